// The sampler's use of the flow options: the noise it starts from and how it reads the output.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/t2v.h"
#include "tests/model/model_test_util.h"
#include "trainer/sampler.h"

using namespace reel;

namespace {

// A freshly initialised model: its final layer is zero, so it outputs 0 for every input.
model::T2VModel zero_output_model(bool frame_time = false) {
  model::T2VOptions options = model::testing::small_options();
  options.transformer.frame_time = frame_time;
  model::T2VModel m(options);
  m->init_weights(0);
  return m;
}

trainer::GenerateOptions small_generate() {
  trainer::GenerateOptions o;
  o.steps = 10;
  o.cfg = 1.0;
  o.bucket = data::Bucket{4, 8, 8};
  return o;
}

torch::Tensor run(model::T2VModel& m, const trainer::GenerateOptions& o, int prompts) {
  std::vector<uint64_t> seeds;
  for (int i = 0; i < prompts; ++i) seeds.push_back(100 + i);
  return trainer::generate(m, std::vector<std::string>(prompts, "a red ball"), seeds, o).to(torch::kFloat64);
}

double frame_correlation(const torch::Tensor& x) {  // (N, C, F, H, W): frames 0 and 3, same pixel
  return (x.select(2, 0) * x.select(2, 3)).mean().item<double>();
}

}  // namespace

TEST(Generate, StartsFromTheRecipesFrameCorrelatedNoise) {
  // A zero velocity leaves the starting noise as it is, so the output is that noise.
  model::T2VModel m = zero_output_model();
  trainer::GenerateOptions o = small_generate();
  torch::Tensor independent = run(m, o, 48);
  at::Generator gen = at::detail::createCPUGenerator(100);
  EXPECT_TRUE(torch::equal(independent[0].to(torch::kFloat32), at::randn({3, 4, 8, 8}, gen)));
  EXPECT_NEAR(frame_correlation(independent), 0.0, 0.05);
  o.flow.frame_correlation = 0.8;
  torch::Tensor shared = run(m, o, 48);
  EXPECT_NEAR(frame_correlation(shared), 0.8, 0.05);
  EXPECT_NEAR(shared.var().item<double>(), 1.0, 0.05);
}

TEST(Generate, ReadsADataPredictionAsTheCleanClip) {
  // Read as a velocity, a zero output keeps the noise; read as the predicted clean clip (zero),
  // the sampler moves to it, leaving only what the last, clamped steps do not remove.
  model::T2VModel m = zero_output_model();
  trainer::GenerateOptions o = small_generate();
  EXPECT_NEAR(run(m, o, 8).std().item<double>(), 1.0, 0.1);
  o.flow.prediction = trainer::FlowSpace::kData;
  EXPECT_LT(run(m, o, 8).std().item<double>(), 0.1);
}

TEST(Generate, StaggeredFramesEachRunTheWholeSchedule) {
  // Read as the predicted clean clip, a zero output moves every frame along its own schedule to
  // 0; frame after frame, each frame runs the same times later, so it ends exactly where it ends
  // when all frames run together, however long the lag.
  model::T2VModel m = zero_output_model(/*frame_time=*/true);
  trainer::GenerateOptions o = small_generate();
  o.flow.prediction = trainer::FlowSpace::kData;
  torch::Tensor together = run(m, o, 2);
  EXPECT_LT(together.std().item<double>(), 0.1);
  for (double stagger : {0.3, 1.0, 2.5}) {
    o.stagger = stagger;
    EXPECT_TRUE(torch::equal(run(m, o, 2), together)) << "stagger " << stagger;
  }
  // A model without per-frame noise levels cannot be sampled frame after frame.
  model::T2VModel plain = zero_output_model();
  EXPECT_THROW(run(plain, o, 1), UserError);
}
