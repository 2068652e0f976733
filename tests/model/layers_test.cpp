// Shared layers: the fused SwiGLU activation, RMSNorm, the time embedding.
#include <gtest/gtest.h>

#include "model/layers.h"

using namespace reel::model;

TEST(SwigluActivation, ValueAndGradientsMatchAutograd) {
  torch::manual_seed(0);
  auto x = torch::randn({2, 5, 12}, torch::TensorOptions().dtype(torch::kDouble).requires_grad(true));
  auto g = torch::randn({2, 5, 6}, torch::kDouble);
  auto y = swiglu_activation(x);
  (y * g).sum().backward();
  auto got = x.grad().clone();
  x.mutable_grad().zero_();
  auto parts = x.chunk(2, -1);
  auto ref = torch::silu(parts[0]) * parts[1];
  (ref * g).sum().backward();
  EXPECT_TRUE(torch::allclose(y, ref, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(got, x.grad(), 1e-12, 1e-12));
}

TEST(RmsNorm, UnitRootMeanSquareTimesWeight) {
  RMSNorm norm(8, 1e-6);
  norm->init_weights();
  auto x = torch::randn({3, 8}) * 5;
  auto y = norm(x);
  EXPECT_TRUE(torch::allclose(y.square().mean(-1), torch::ones({3}), 1e-4, 1e-4));
  torch::NoGradGuard no_grad;
  norm->weight.fill_(2.0);
  EXPECT_TRUE(torch::allclose(norm(x), 2 * y, 1e-5, 1e-5));
}

TEST(TimestepFeatures, CosSinOfScaledTime) {
  auto f = timestep_features(torch::tensor({0.0f, 0.5f}), 8);
  ASSERT_EQ(f.sizes(), (std::vector<int64_t>{2, 8}));
  EXPECT_TRUE(torch::allclose(f[0], torch::tensor({1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f})));
  // Frequency 0 is 1: the first pair is cos(500), sin(500).
  EXPECT_NEAR(f[1][0].item<float>(), std::cos(500.0), 1e-4);
  EXPECT_NEAR(f[1][4].item<float>(), std::sin(500.0), 1e-4);
}
