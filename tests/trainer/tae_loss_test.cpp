// The TAE's losses and metrics against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "trainer/tae_loss.h"

namespace reel::trainer {
namespace {

torch::Tensor clip(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::rand(shape, gen) * 2 - 1;
}

TEST(TaeLoss, PsnrOfAnExactAndAnOffsetReconstruction) {
  torch::Tensor x = clip({2, 3, 4, 8, 8}, 1);
  EXPECT_TRUE(std::isinf(psnr(x, x)[0].item<double>()));
  // An offset of 0.1 in [-1, 1] is 12.75 on [0, 255]: PSNR = 20 log10(255 / 12.75) = 26.02 dB.
  torch::Tensor p = psnr(x, x + 0.1);
  EXPECT_NEAR(p[0].item<double>(), 20 * std::log10(255 / 12.75), 1e-6);
  EXPECT_NEAR(p[1].item<double>(), p[0].item<double>(), 1e-6);
}

TEST(TaeLoss, SsimIsOneForEqualImagesAndMatchesConstantImages) {
  torch::Tensor x = clip({2, 3, 2, 16, 16}, 2);
  EXPECT_NEAR(ssim(x, x)[0].item<double>(), 1.0, 1e-9);
  EXPECT_LT(ssim(x, -x)[0].item<double>(), 0.1);
  // Constant images a = 0.5 and b = 0.25 (on [0, 1]): no variance, SSIM = (2ab + C1) / (a^2 + b^2 + C1).
  torch::Tensor a = torch::zeros({1, 1, 1, 12, 12}), b = torch::full({1, 1, 1, 12, 12}, -0.5);
  const double c1 = 1e-4, expected = (2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1);
  EXPECT_NEAR(ssim(a, b)[0].item<double>(), expected, 1e-9);
  // Frames smaller than the window still score.
  torch::Tensor small = clip({1, 3, 1, 4, 4}, 3);
  EXPECT_NEAR(ssim(small, small)[0].item<double>(), 1.0, 1e-9);
}

TEST(TaeLoss, KlAndGradientLoss) {
  torch::Tensor zeros = torch::zeros({2, 4, 1, 2, 2});
  EXPECT_DOUBLE_EQ(kl_loss(zeros, zeros).item<double>(), 0.0);
  EXPECT_NEAR(kl_loss(torch::ones({2, 4, 1, 2, 2}), zeros).item<double>(), 0.5, 1e-7);

  torch::Tensor x = clip({1, 3, 3, 8, 8}, 4);
  EXPECT_DOUBLE_EQ(gradient_loss(x, x).item<double>(), 0.0);
  EXPECT_NEAR(gradient_loss(x, x + 0.3).item<double>(), 0.0, 1e-6);  // a constant shift has the same structure
  EXPECT_GT(gradient_loss(x, torch::zeros_like(x)).item<double>(), 0.1);
  // A recon that only differs in time: the h and w terms vanish, the t term is |dx_t| averaged, / 3 terms.
  torch::Tensor still = x.narrow(2, 0, 1).expand_as(x).contiguous();
  torch::Tensor xt = x.narrow(2, 1, 2) - x.narrow(2, 0, 2);
  const double expected = xt.abs().mean().item<double>() / 3 +
                          ((x.narrow(3, 1, 7) - x.narrow(3, 0, 7)) - (still.narrow(3, 1, 7) - still.narrow(3, 0, 7)))
                                  .abs().mean().item<double>() / 3 +
                          ((x.narrow(4, 1, 7) - x.narrow(4, 0, 7)) - (still.narrow(4, 1, 7) - still.narrow(4, 0, 7)))
                                  .abs().mean().item<double>() / 3;
  EXPECT_NEAR(gradient_loss(x, still).item<double>(), expected, 1e-6);
}

TEST(TaeLoss, OutlierPenaltyActsOnlyBeyondRSigmaAndPullsTheOutlierIn) {
  torch::Tensor z = torch::randn({4, 2, 1, 4, 4}, at::detail::createCPUGenerator(5)).clamp(-1.5, 1.5);
  EXPECT_DOUBLE_EQ(outlier_penalty(z, 3.0).item<double>(), 0.0);  // every value within 3 sigma
  torch::Tensor out = z.clone();
  out[0][1][0][0][0] = 40.0;
  out.requires_grad_(true);
  torch::Tensor p = outlier_penalty(out, 3.0);
  EXPECT_GT(p.item<double>(), 0.0);
  p.backward();
  EXPECT_GT(out.grad()[0][1][0][0][0].item<double>(), 0.0);  // descending the penalty lowers the outlier
  // Channel 0 has no outlier: none of its values is penalised.
  EXPECT_DOUBLE_EQ(out.grad().select(1, 0).abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace reel::trainer
