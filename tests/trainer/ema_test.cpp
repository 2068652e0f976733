// EMA: the warmed-up decay and the update rule.
#include <gtest/gtest.h>

#include "trainer/ema.h"

using reel::trainer::Ema;

TEST(Ema, DecayWarmsUpToTheConfiguredValue) {
  torch::nn::Linear layer(2, 2);
  Ema ema(*layer, 0.99);
  EXPECT_DOUBLE_EQ(ema.decay_at(0), 0.1);
  EXPECT_DOUBLE_EQ(ema.decay_at(8), 0.5);
  EXPECT_DOUBLE_EQ(ema.decay_at(890), 0.99);    // (891 / 900) = 0.99 exactly
  EXPECT_DOUBLE_EQ(ema.decay_at(100000), 0.99);  // capped
  for (int64_t s = 1; s < 2000; ++s) EXPECT_GE(ema.decay_at(s), ema.decay_at(s - 1));
}

TEST(Ema, UpdateBlendsWithTheStepsDecay) {
  torch::nn::Linear layer(3, 1);
  torch::NoGradGuard no_grad;
  layer->weight.fill_(1.0);
  Ema ema(*layer, 0.9);
  layer->weight.fill_(3.0);
  ema.update(*layer, 0);  // d = 0.1: 0.1 * 1 + 0.9 * 3
  EXPECT_NEAR(ema.shadow()[0][0][0].item<double>(), 2.8, 1e-6);
  ema.update(*layer, 1000);  // d = 0.9: 0.9 * 2.8 + 0.1 * 3
  EXPECT_NEAR(ema.shadow()[0][0][0].item<double>(), 2.82, 1e-6);
  torch::nn::Linear other(3, 1);
  ema.copy_to(*other);
  EXPECT_NEAR(other->weight[0][0].item<double>(), 2.82, 1e-6);
}
