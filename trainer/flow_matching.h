// The flow-matching objective Movie Gen trains with: the path, its velocity target, the
// logit-normal time distribution and the loss.
//
// Convention (MOVIEGEN.md): t = 0 is noise x0 ~ N(0, I), t = 1 is data x1.
//   x_t    = t * x1 + (1 - (1 - sigma_min) * t) * x0
//   target = x1 - (1 - sigma_min) * x0          (d x_t / d t)
//   t      = sigmoid(n),  n ~ N(t_mean, t_std^2)  (logit-normal)
#pragma once

#include <torch/torch.h>

namespace reel::trainer {

struct FlowMatchingOptions {
  double sigma_min = 1e-5;  // noise left at t = 1
  double t_mean = 0.0;      // mean of the logit-normal's underlying normal
  double t_std = 1.0;       // its standard deviation (> 0)
};

// n times drawn from the logit-normal distribution, float32 (n), in (0, 1).
torch::Tensor sample_t(int64_t n, const FlowMatchingOptions& options, at::Generator& gen);

struct FlowPoint {
  torch::Tensor xt;      // same shape as x1
  torch::Tensor target;  // same shape as x1
};

// x1 data, x0 noise (same shape (B, ...)), t (B): the point on the path and its velocity.
FlowPoint flow_path(const torch::Tensor& x1, const torch::Tensor& x0, const torch::Tensor& t,
                    double sigma_min);

// Mean squared error over every element: the training loss.
torch::Tensor flow_loss(const torch::Tensor& prediction, const torch::Tensor& target);

// Per-sample MSE (B): used by the fixed-t validation loss.
torch::Tensor flow_loss_per_sample(const torch::Tensor& prediction, const torch::Tensor& target);

}  // namespace reel::trainer
