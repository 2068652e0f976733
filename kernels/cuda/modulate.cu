// The fused adaLN-modulation CUDA kernel (reference: kernels/modulate.cpp).
#include "kernels/cuda/modulate.h"

namespace reel::kernels::cuda {
namespace {

// One thread per element, grid-stride; shift/scale rows are re-read from L2 by every token.
__global__ void modulate_kernel(const float* __restrict__ x, const float* __restrict__ shift,
                                const float* __restrict__ scale, float* __restrict__ y, int64_t total,
                                int64_t tokens, int64_t dim) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t d = i % dim;
    int64_t b = i / (tokens * dim);
    int64_t row = b * dim + d;
    y[i] = fmaf(x[i], 1.0f + scale[row], shift[row]);
  }
}

}  // namespace

cudaError_t modulate_f32(const float* x, const float* shift, const float* scale, float* y, int64_t batch,
                         int64_t tokens, int64_t dim, cudaStream_t stream) {
  if (!x || !shift || !scale || !y || batch <= 0 || tokens <= 0 || dim <= 0) return cudaErrorInvalidValue;
  const int64_t total = batch * tokens * dim;
  const int threads = 256;
  const int64_t blocks = (total + threads - 1) / threads;
  const int grid = static_cast<int>(blocks < 65535 * 8 ? blocks : 65535 * 8);
  modulate_kernel<<<grid, threads, 0, stream>>>(x, shift, scale, y, total, tokens, dim);
  return cudaGetLastError();
}

}  // namespace reel::kernels::cuda
