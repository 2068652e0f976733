// The flow-matching objective and the schedules against their definitions.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "trainer/flow_matching.h"
#include "trainer/schedule.h"

using namespace reel::trainer;

TEST(FlowPath, EndpointsAndTarget) {
  torch::manual_seed(0);
  torch::Tensor x1 = torch::randn({4, 3, 2, 4, 4});
  torch::Tensor x0 = torch::randn({4, 3, 2, 4, 4});
  const double s = 1e-5;
  FlowPoint at0 = flow_path(x1, x0, torch::zeros({4}), s);
  EXPECT_TRUE(torch::allclose(at0.xt, x0));
  FlowPoint at1 = flow_path(x1, x0, torch::ones({4}), s);
  EXPECT_TRUE(torch::allclose(at1.xt, x1 + s * x0, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(at0.target, x1 - (1 - s) * x0));
  // The target is the derivative of the path: finite difference at t = 0.3.
  torch::Tensor t = torch::full({4}, 0.3), dt = torch::full({4}, 1e-3);
  torch::Tensor fd = (flow_path(x1, x0, t + dt, s).xt - flow_path(x1, x0, t, s).xt) / 1e-3;
  EXPECT_TRUE(torch::allclose(fd, at0.target, 1e-3, 1e-3));
  // Per-sample t: sample 2 at t = 1 is data, sample 0 at t = 0 is noise.
  FlowPoint mixed = flow_path(x1, x0, torch::tensor({0.0f, 0.5f, 1.0f, 0.25f}), s);
  EXPECT_TRUE(torch::allclose(mixed.xt[0], x0[0]));
  EXPECT_TRUE(torch::allclose(mixed.xt[2], x1[2] + s * x0[2], 1e-6, 1e-7));
}

TEST(OutputToVelocity, VelocityPredictionIsTheOutput) {
  torch::manual_seed(1);
  torch::Tensor out = torch::randn({2, 3, 1, 4, 4}), xt = torch::randn({2, 3, 1, 4, 4});
  FlowMatchingOptions o;
  EXPECT_TRUE(torch::equal(output_to_velocity(out, xt, torch::tensor({0.2f, 0.7f}), o), out));
}

TEST(OutputToVelocity, ExactDataPredictionGivesThePathTarget) {
  torch::manual_seed(2);
  torch::Tensor x1 = torch::randn({4, 3, 2, 4, 4}), x0 = torch::randn({4, 3, 2, 4, 4});
  FlowMatchingOptions o;
  o.sigma_min = 1e-3;
  o.prediction = FlowSpace::kData;
  torch::Tensor t = torch::tensor({0.0f, 0.3f, 0.6f, 0.9f});
  FlowPoint p = flow_path(x1, x0, t, o.sigma_min);
  EXPECT_TRUE(torch::allclose(output_to_velocity(x1, p.xt, t, o), p.target, 1e-4, 1e-5));
  // Nearer the data than kMinNoiseFraction the divisor is clamped: the velocity is damped to
  // (x1 - (1 - s) xt) / 0.05 instead of dividing by ~0.
  torch::Tensor late = torch::full({4}, 0.999);
  FlowPoint q = flow_path(x1, x0, late, o.sigma_min);
  torch::Tensor expected = (x1 - (1 - o.sigma_min) * q.xt) / kMinNoiseFraction;
  EXPECT_TRUE(torch::allclose(output_to_velocity(x1, q.xt, late, o), expected, 1e-4, 1e-5));
  // A wrong prediction is not the target.
  EXPECT_FALSE(torch::allclose(output_to_velocity(x1 + 0.1, p.xt, t, o), p.target, 1e-3, 1e-3));
}

TEST(OutputToVelocity, PredictionNames) {
  EXPECT_EQ(parse_flow_space("velocity"), FlowSpace::kVelocity);
  EXPECT_EQ(parse_flow_space("data"), FlowSpace::kData);
  EXPECT_THROW(parse_flow_space("epsilon"), reel::UserError);
}

TEST(TrainingLoss, ComparesVelocitiesOrTheCleanData) {
  torch::manual_seed(3);
  torch::Tensor x1 = torch::randn({2, 3, 2, 4, 4}), x0 = torch::randn({2, 3, 2, 4, 4});
  torch::Tensor out = torch::randn({2, 3, 2, 4, 4}), t = torch::tensor({0.2f, 0.7f});
  FlowMatchingOptions o;
  FlowPoint p = flow_path(x1, x0, t, o.sigma_min);
  EXPECT_TRUE(torch::allclose(training_loss(out, p, x1, t, o), flow_loss(out, p.target)));
  o.prediction = FlowSpace::kData;
  torch::Tensor velocity_loss = training_loss(out, p, x1, t, o);
  EXPECT_TRUE(torch::allclose(velocity_loss, flow_loss(output_to_velocity(out, p.xt, t, o), p.target)));
  o.loss = FlowSpace::kData;
  torch::Tensor data_loss = training_loss(out, p, x1, t, o);
  EXPECT_TRUE(torch::allclose(data_loss, flow_loss(out, x1)));
  EXPECT_FALSE(torch::allclose(data_loss, velocity_loss));
  EXPECT_EQ(training_loss(x1, p, x1, t, o).item<float>(), 0.0f);  // the clean data itself: no loss
}

TEST(TrainingLoss, TemporalWeightAddsTheFrameDifferenceError) {
  torch::manual_seed(4);
  torch::Tensor x1 = torch::randn({2, 3, 3, 4, 4}), x0 = torch::randn({2, 3, 3, 4, 4});
  torch::Tensor t = torch::tensor({0.3f, 0.6f});
  FlowMatchingOptions o;
  FlowPoint p = flow_path(x1, x0, t, o.sigma_min);
  // An error that is the same in every frame has no frame-difference part; one that changes
  // from frame to frame does.
  torch::Tensor constant = p.target + 0.5, changing = p.target.clone();
  changing.select(2, 1).add_(0.5);
  o.temporal_weight = 2.0;
  EXPECT_NEAR(training_loss(constant, p, x1, t, o).item<double>(), 0.25, 1e-6);
  // frame 1 off by 0.5: plain MSE 0.25 / 3; both differences touching frame 1 off by 0.5: 0.25
  EXPECT_NEAR(training_loss(changing, p, x1, t, o).item<double>(), 0.25 / 3 + 2.0 * 0.25, 1e-6);
  // Images (one frame) have no differences.
  FlowPoint image = flow_path(x1.narrow(2, 0, 1), x0.narrow(2, 0, 1), t, o.sigma_min);
  EXPECT_NEAR(training_loss(image.target + 0.5, image, x1.narrow(2, 0, 1), t, o).item<double>(), 0.25, 1e-6);
}

TEST(SampleNoise, UncorrelatedIsPlainRandn) {
  at::Generator a = at::detail::createCPUGenerator(3), b = at::detail::createCPUGenerator(3);
  EXPECT_TRUE(torch::equal(sample_noise({2, 3, 4, 5, 5}, 0.0, a), at::randn({2, 3, 4, 5, 5}, b)));
}

TEST(SampleNoise, FramesCorrelateByRho) {
  at::Generator gen = at::detail::createCPUGenerator(4);
  const double rho = 0.6;
  torch::Tensor x = sample_noise({512, 3, 4, 8, 8}, rho, gen).to(torch::kFloat64);  // (B, C, F, H, W)
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(x.var().item<double>(), 1.0, 0.01);  // each element stays N(0, 1)
  auto corr = [](const torch::Tensor& a, const torch::Tensor& b) { return (a * b).mean().item<double>(); };
  // Two frames of a clip, same pixel: rho. Two pixels of a frame, or two clips: 0.
  EXPECT_NEAR(corr(x.select(2, 0), x.select(2, 3)), rho, 0.01);
  EXPECT_NEAR(corr(x.select(2, 1), x.select(2, 2)), rho, 0.01);
  EXPECT_NEAR(corr(x.select(2, 0).select(3, 0), x.select(2, 0).select(3, 5)), 0.0, 0.02);
  EXPECT_NEAR(corr(x.narrow(0, 0, 256), x.narrow(0, 256, 256)), 0.0, 0.01);
  // A single frame (an image) is plain N(0, 1) noise too.
  torch::Tensor image = sample_noise({4096, 3, 1, 4, 4}, rho, gen).to(torch::kFloat64);
  EXPECT_NEAR(image.var().item<double>(), 1.0, 0.02);
}

TEST(FlowLoss, IsMeanSquaredError) {
  torch::Tensor a = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({2, 2});
  torch::Tensor b = torch::tensor({1.0f, 0.0f, 3.0f, 1.0f}).view({2, 2});
  EXPECT_FLOAT_EQ(flow_loss(a, b).item<float>(), (4.0f + 9.0f) / 4.0f);
  torch::Tensor per = flow_loss_per_sample(a, b);
  EXPECT_FLOAT_EQ(per[0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(per[1].item<float>(), 4.5f);
}

TEST(SampleT, LogitNormalMoments) {
  at::Generator gen = at::detail::createCPUGenerator(7);
  FlowMatchingOptions o;
  torch::Tensor t = sample_t(200000, o, gen).to(torch::kFloat64);
  EXPECT_GT(t.min().item<double>(), 0.0);
  EXPECT_LT(t.max().item<double>(), 1.0);
  // logit(t) must be N(0, 1); t itself has mean 0.5 and std ~0.2083 for logit-normal(0, 1).
  torch::Tensor logit = torch::log(t / (1 - t));
  EXPECT_NEAR(logit.mean().item<double>(), 0.0, 0.01);
  EXPECT_NEAR(logit.std().item<double>(), 1.0, 0.01);
  EXPECT_NEAR(t.mean().item<double>(), 0.5, 0.003);
  EXPECT_NEAR(t.std().item<double>(), 0.2083, 0.003);
  // A shifted distribution moves the mean of logit(t).
  o.t_mean = 1.0;
  o.t_std = 0.5;
  torch::Tensor t2 = sample_t(100000, o, gen).to(torch::kFloat64);
  torch::Tensor l2 = torch::log(t2 / (1 - t2));
  EXPECT_NEAR(l2.mean().item<double>(), 1.0, 0.01);
  EXPECT_NEAR(l2.std().item<double>(), 0.5, 0.01);
}

TEST(SampleT, SeededIsDeterministic) {
  at::Generator a = at::detail::createCPUGenerator(3), b = at::detail::createCPUGenerator(3);
  EXPECT_TRUE(torch::equal(sample_t(16, {}, a), sample_t(16, {}, b)));
}

TEST(LinearQuadraticSchedule, PublishedShape) {
  std::vector<double> t = linear_quadratic_schedule(50);
  ASSERT_EQ(t.size(), 51u);
  EXPECT_DOUBLE_EQ(t.front(), 0.0);
  EXPECT_DOUBLE_EQ(t.back(), 1.0);
  for (int i = 0; i <= 25; ++i) EXPECT_NEAR(t[i], i / 250.0, 1e-12) << "step " << i;
  for (size_t i = 1; i < t.size(); ++i) EXPECT_GT(t[i], t[i - 1]) << "not monotone at " << i;
  // The quadratic part has constant second differences and joins with the linear slope:
  // its first step is slope + a, with 2a the second difference.
  const double second = (t[27] - t[26]) - (t[26] - t[25]);
  for (int i = 27; i <= 50; ++i) EXPECT_NEAR((t[i] - t[i - 1]) - (t[i - 1] - t[i - 2]), second, 1e-12) << i;
  EXPECT_NEAR((t[26] - t[25]) - second / 2, 1.0 / 250, 1e-12);
  EXPECT_GT(second, 0.0);
}

TEST(LinearQuadraticSchedule, RejectsTooFewSteps) {
  EXPECT_THROW(linear_quadratic_schedule(1), reel::UserError);
}

TEST(LearningRate, WarmupThenCosineToMin) {
  LrScheduleOptions o;
  o.lr = 1e-3;
  o.min_lr = 1e-4;
  o.warmup_steps = 10;
  o.total_steps = 110;
  EXPECT_NEAR(learning_rate(o, 0), 1e-4, 1e-12);
  EXPECT_NEAR(learning_rate(o, 9), 1e-3, 1e-12);
  EXPECT_NEAR(learning_rate(o, 10), 1e-3, 1e-12);
  EXPECT_NEAR(learning_rate(o, 60), 5.5e-4, 1e-9);
  EXPECT_NEAR(learning_rate(o, 110), 1e-4, 1e-12);
  EXPECT_NEAR(learning_rate(o, 500), 1e-4, 1e-12);
  for (int s = 11; s < 110; ++s) EXPECT_LE(learning_rate(o, s), learning_rate(o, s - 1));
  o.kind = "constant";
  EXPECT_NEAR(learning_rate(o, 80), 1e-3, 1e-12);
}

TEST(LrPlateau, LowersAfterPatienceValidationsWithoutImprovementDownToTheFloor) {
  LrPlateau p;
  p.patience = 2;
  p.factor = 0.5;
  p.threshold = 0.1;  // an improvement must be 10%
  p.floor = 0.2;
  EXPECT_FALSE(p.observe(1.0, 1.0));   // the first loss is the best
  EXPECT_FALSE(p.observe(0.95, 1.0));  // 5%: not an improvement, 1 of 2
  EXPECT_TRUE(p.observe(0.95, 1.0));   // 2 of 2: lowered
  EXPECT_DOUBLE_EQ(p.apply(1.0), 0.5);
  EXPECT_DOUBLE_EQ(p.best, 1.0);
  EXPECT_FALSE(p.observe(0.8, 1.0));   // 20% better: new best, count reset
  EXPECT_DOUBLE_EQ(p.best, 0.8);
  EXPECT_EQ(p.bad, 0);
  EXPECT_FALSE(p.observe(0.8, 1.0));
  EXPECT_TRUE(p.observe(0.8, 1.0));    // 0.25
  EXPECT_DOUBLE_EQ(p.apply(1.0), 0.25);
  EXPECT_FALSE(p.observe(0.8, 1.0));
  EXPECT_TRUE(p.observe(0.8, 1.0));    // 0.125 scheduled, held at the floor
  EXPECT_DOUBLE_EQ(p.apply(1.0), 0.2);
  EXPECT_FALSE(p.observe(0.8, 1.0));
  EXPECT_FALSE(p.observe(0.8, 1.0));   // at the floor: no further lowering
  EXPECT_DOUBLE_EQ(p.scale, 0.125);
  LrPlateau off;                        // patience 0: never
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(off.observe(1.0, 1.0));
  EXPECT_DOUBLE_EQ(off.apply(0.3), 0.3);
}

TEST(FlowPath, PerFrameTimesMoveEachFrameAlongItsOwnPath) {
  torch::manual_seed(1);
  torch::Tensor x1 = torch::randn({2, 3, 4, 2, 2}), x0 = torch::randn({2, 3, 4, 2, 2}), out = torch::randn({2, 3, 4, 2, 2});
  torch::Tensor t = torch::rand({2, 4});
  FlowMatchingOptions data;
  data.prediction = FlowSpace::kData;
  FlowPoint p = flow_path(x1, x0, t, 1e-5);
  torch::Tensor v = output_to_velocity(out, p.xt, t, data);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t f = 0; f < 4; ++f) {
      auto frame = [&](const torch::Tensor& x) { return x.narrow(0, b, 1).narrow(2, f, 1); };
      torch::Tensor tf = t[b][f].reshape({1});
      FlowPoint one = flow_path(frame(x1), frame(x0), tf, 1e-5);
      EXPECT_TRUE(torch::allclose(frame(p.xt), one.xt)) << b << " " << f;
      EXPECT_TRUE(torch::allclose(frame(p.target), one.target));
      EXPECT_TRUE(torch::allclose(frame(v), output_to_velocity(frame(out), one.xt, tf, data)));
    }
  }
}

TEST(FlowTimes, OneTimePerClipOrOnePerFrame) {
  FlowMatchingOptions o;
  at::Generator a = at::detail::createCPUGenerator(5), b = at::detail::createCPUGenerator(5);
  torch::Tensor clip = sample_t(6, o, a);
  EXPECT_TRUE(torch::equal(sample_frame_t(6, 4, 0.0, o, b), clip.unsqueeze(1).expand({6, 4})));
  auto own_rows = [&](double per_frame) {
    at::Generator gen = at::detail::createCPUGenerator(7);
    torch::Tensor t = sample_frame_t(2000, 4, per_frame, o, gen);
    EXPECT_TRUE((t > 0).all().item<bool>() && (t < 1).all().item<bool>());
    return (t.select(1, 0) != t.select(1, 3)).to(torch::kFloat64).mean().item<double>();
  };
  EXPECT_EQ(own_rows(1.0), 1.0);
  EXPECT_NEAR(own_rows(0.5), 0.5, 0.04);
}
