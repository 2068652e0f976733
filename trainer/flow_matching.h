// The flow-matching objective Movie Gen trains with: the path, its velocity target, the
// logit-normal time distribution and the loss.
//
// Convention (MOVIEGEN.md): t = 0 is noise x0 ~ N(0, I), t = 1 is data x1.
//   x_t    = t * x1 + (1 - (1 - sigma_min) * t) * x0
//   target = x1 - (1 - sigma_min) * x0          (d x_t / d t)
//   t      = sigmoid(n),  n ~ N(t_mean, t_std^2)  (logit-normal)
//
// The network either outputs the velocity itself (Movie Gen) or the clean data x1, turned into a
// velocity before the loss and the sampler (x-prediction, "Back to Basics: Let Denoising
// Generative Models Denoise", Li & He 2025): clean data lies on a low-dimensional manifold, so a
// narrow transformer need not carry a token's full-dimensional noise through its width.
#pragma once

#include <torch/torch.h>

#include <string>

namespace reel::trainer {

enum class FlowSpace { kVelocity, kData };

// What the network outputs, and where the training loss compares: the velocity (Movie Gen) or
// the clean data x1. By recipe name: "velocity" | "data".
FlowSpace parse_flow_space(const std::string& name);

struct FlowMatchingOptions {
  double sigma_min = 1e-5;  // noise left at t = 1
  FlowSpace prediction = FlowSpace::kVelocity;  // what the network outputs
  FlowSpace loss = FlowSpace::kVelocity;        // kData: MSE of the predicted x1 (needs prediction kData)
  double frame_correlation = 0.0;  // correlation of the noise between the frames of a clip, in [0, 1)
  // > 0 adds temporal_weight x the MSE of the frame-to-frame differences (along F) to the loss:
  // motion lives in those differences, a small share of the plain MSE.
  double temporal_weight = 0.0;
  double t_mean = 0.0;      // mean of the logit-normal's underlying normal
  double t_std = 1.0;       // its standard deviation (> 0)
};

// n times drawn from the logit-normal distribution, float32 (n), in (0, 1).
torch::Tensor sample_t(int64_t n, const FlowMatchingOptions& options, at::Generator& gen);

// Times per frame, (n, frames): each clip draws one time for all its frames (sample_t first, so
// per_frame = 0 draws exactly sample_t's numbers), then with probability per_frame its own time
// for every frame ("diffusion forcing", Chen et al. 2024): a frame learns to be denoised next to
// cleaner or noisier ones, which the frame-after-frame sampler (sample.stagger) relies on.
torch::Tensor sample_frame_t(int64_t n, int64_t frames, double per_frame, const FlowMatchingOptions& options,
                             at::Generator& gen);

// t (B) or per frame (B, F) as a view that broadcasts over x (B, C, F, H, W).
torch::Tensor broadcast_time(const torch::Tensor& t, const torch::Tensor& x);

// Gaussian noise x0 of `shape` (..., C, F, H, W), each element N(0, 1). With frame_correlation
// rho > 0 the frames of a clip share part of it, x0 = sqrt(rho) * shared + sqrt(1 - rho) *
// own, so any two frames correlate by rho (the "mixed noise" prior of Ge et al. 2023, "Preserve
// Your Own Correlation"); the sampler starts from the same kind of noise. rho = 0 draws exactly
// at::randn(shape, gen).
torch::Tensor sample_noise(torch::IntArrayRef shape, double frame_correlation, at::Generator& gen);

struct FlowPoint {
  torch::Tensor xt;      // same shape as x1
  torch::Tensor target;  // same shape as x1
};

// x1 data, x0 noise (same shape (B, ...)), t (B) or per frame (B, F): the point on the path and
// its velocity.
FlowPoint flow_path(const torch::Tensor& x1, const torch::Tensor& x0, const torch::Tensor& t,
                    double sigma_min);

// The smallest noise fraction 1 - (1 - sigma_min) t that data prediction divides by: beyond
// t ~ 0.95 the velocity of a data prediction is damped instead of amplified without bound.
constexpr double kMinNoiseFraction = 0.05;

// The network's output as a velocity at (xt, t): the output itself for kVelocity; for kData
// (output = predicted x1), v = (output - (1 - sigma_min) xt) / max(1 - (1 - sigma_min) t,
// kMinNoiseFraction), which equals the path's target when the prediction is exact.
torch::Tensor output_to_velocity(const torch::Tensor& output, const torch::Tensor& xt, const torch::Tensor& t,
                                 const FlowMatchingOptions& options);

// The training loss of the network's output at p (on the path from data x1 at times t): the MSE of
// the velocity (output_to_velocity vs p.target), or with loss kData the MSE of output vs x1, which
// weighs a sample by its noise fraction squared relative to the velocity MSE: the noisy end, where
// layout, colour and motion are decided, is not drowned by the amplified near-data end.
torch::Tensor training_loss(const torch::Tensor& output, const FlowPoint& p, const torch::Tensor& x1,
                            const torch::Tensor& t, const FlowMatchingOptions& options);

// Mean squared error over every element.
torch::Tensor flow_loss(const torch::Tensor& prediction, const torch::Tensor& target);

// Per-sample MSE (B): used by the fixed-t validation loss.
torch::Tensor flow_loss_per_sample(const torch::Tensor& prediction, const torch::Tensor& target);

}  // namespace reel::trainer
