// The sampler's use of the flow options: the noise it starts from and how it reads the output.
#include <gtest/gtest.h>

#include "model/t2v.h"
#include "tests/model/model_test_util.h"
#include "trainer/sampler.h"

using namespace reel;

namespace {

// A freshly initialised model: its final layer is zero, so it outputs 0 for every input.
model::T2VModel zero_output_model() {
  model::T2VModel m(model::testing::small_options());
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
