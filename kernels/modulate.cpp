// adaLN modulation: reference and dispatcher.
#include "kernels/modulate.h"

#include "common/error.h"

namespace reel::kernels {

torch::Tensor modulate_reference(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  return torch::addcmul(shift.unsqueeze(1), x, scale.unsqueeze(1) + 1);
}

torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  if (x.dim() != 3 || shift.sizes() != scale.sizes() || shift.dim() != 2 || shift.size(0) != x.size(0) ||
      shift.size(1) != x.size(2)) {
    fail("modulate: x must be (B, N, D) with shift and scale (B, D); got x ", x.sizes(), ", shift ",
         shift.sizes(), ", scale ", scale.sizes());
  }
  return modulate_reference(x, shift, scale);
}

}  // namespace reel::kernels
