// The adaLN input of every Movie Gen block, fused: y = rms_norm(x) * (1 + scale) + shift, with
// rms_norm(x) = x / sqrt(mean(x^2) + eps) over the last dim (no weight: the modulation is the
// affine part) and scale, shift per sample. Unfused it is six element-wise passes forward and
// about a dozen in backward; fused it is one pass forward and one backward.
#pragma once

#include <torch/torch.h>

namespace reel::kernels {

// x (B, N, D); shift, scale (B, D) or (B, 1, D) -> (B, N, D). Plain differentiable LibTorch ops:
// the definition the fused version is tested against.
torch::Tensor norm_modulate_reference(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                                      double eps);

// Same result and gradients (w.r.t. x, shift and scale). Contiguous-or-not fp32 CPU tensors take
// the fused loops; any other dtype or device takes the reference. Not twice differentiable.
torch::Tensor norm_modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                            double eps);

}  // namespace reel::kernels
