// Launcher of the fused CUDA adaLN-modulation kernel over raw device pointers, so it compiles
// with nvcc alone (no CUDA LibTorch needed) and can be called from any CUDA tensor's data.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace reel::kernels::cuda {

// y[b, n, d] = x[b, n, d] * (1 + scale[b, d]) + shift[b, d]; all fp32, contiguous, on the
// device. Returns cudaErrorInvalidValue for null pointers or non-positive sizes, else the
// launch status. Asynchronous on `stream`.
cudaError_t modulate_f32(const float* x, const float* shift, const float* scale, float* y, int64_t batch,
                         int64_t tokens, int64_t dim, cudaStream_t stream);

}  // namespace reel::kernels::cuda
