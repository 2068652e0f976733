// adaLN modulation, y = x * (1 + scale) + shift, with scale and shift per sample: the
// element-wise step every Movie Gen block runs before attention and before the FFN.
// The CPU reference below is the definition; kernels/cuda/modulate.cu is the fused CUDA
// kernel, checked against it where a GPU exists.
#pragma once

#include <torch/torch.h>

namespace reel::kernels {

// x (B, N, D); shift, scale (B, D) -> (B, N, D). Differentiable (plain LibTorch ops).
torch::Tensor modulate_reference(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale);

// Checks shapes and dtypes (UserError naming them) then dispatches: the reference on CPU.
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale);

}  // namespace reel::kernels
