// The few LibTorch calls whose spelling changed between Debian's LibTorch 1.13 (build and CI
// machines) and the CUDA LibTorch of a current PyTorch (2.x, GPU machines). Everything else in
// Reel is written against the API both share; this header is the only place that asks which.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace reel::compat {

// Optimizers key their per-parameter state by the TensorImpl's address: as a printed string up
// to 2.0, as the pointer itself after.
using OptimizerStateKey =
    typename std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

template <typename Key = OptimizerStateKey>
Key optimizer_state_key(const torch::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;  // how 1.13's c10::guts::to_string prints the pointer
    os << static_cast<const void*>(param.unsafeGetTensorImpl());
    return os.str();
  } else {
    return static_cast<Key>(param.unsafeGetTensorImpl());
  }
}

// Turns autocast on (to `dtype`) or off for `device` (CPU or CUDA) on this thread; off also
// drops the cache of cast weights. The per-device setters arrived in 2.4.
inline void set_autocast(c10::DeviceType device, bool enabled, at::ScalarType dtype = at::kBFloat16) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(device, enabled);
  if (enabled) at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
    if (enabled) at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    if (enabled) at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
  if (!enabled) at::autocast::clear_cache();
}

}  // namespace reel::compat
