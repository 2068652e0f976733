// The temporal autoencoder's training losses and its reconstruction metrics.
//
// Pixels are (B, C, T, H, W) in [-1, 1]; latents (B, C', T', H', W').
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace reel::trainer {

// Mean absolute difference of the finite differences along h, w and (with T > 1) t: the
// structural term, which keeps edges and motion sharp where a pixel loss alone blurs them.
torch::Tensor gradient_loss(const torch::Tensor& x, const torch::Tensor& recon);

// KL(N(mean, exp(logvar)) || N(0, 1)), averaged over every latent element.
torch::Tensor kl_loss(const torch::Tensor& mean, const torch::Tensor& logvar);

// Movie Gen's outlier penalty: for each latent channel, the mean over elements of
// max(|z - mu| - r * sigma, 0), mu and sigma that channel's mean and standard deviation over the
// batch (B, T', H', W'), averaged over channels. Zero when no value is more than r sigma out.
torch::Tensor outlier_penalty(const torch::Tensor& z, double r);

// Peak signal-to-noise ratio in dB of a reconstruction on the [0, 255] scale (pixels in [-1, 1]
// as above), one value per sample (B): 10 log10(255^2 / MSE). +inf for an exact one.
torch::Tensor psnr(const torch::Tensor& x, const torch::Tensor& recon);

// Structural similarity per sample (B): the mean over frames, channels and positions of SSIM with
// an 11x11 Gaussian window (sigma 1.5) on the [0, 1] scale, C1 = 0.01^2, C2 = 0.03^2 (Wang et al.
// 2004), valid positions only; frames smaller than the window use a window of their size.
torch::Tensor ssim(const torch::Tensor& x, const torch::Tensor& recon);

}  // namespace reel::trainer
