// Seeded parameter initialisers, applied after allocation by each module's init_weights(gen).
//
// Values are drawn on the CPU in float32 from the caller's generator and then copied into the
// parameter, so one seed gives the same weights on any device and in any dtype, and the global
// RNG is never touched. Modules call these in a fixed order, which makes init deterministic.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace reel::model {

// A CPU generator seeded with `seed`, private to one init_weights() call.
at::Generator make_init_generator(uint64_t seed);

void init_normal(const torch::Tensor& p, double std, at::Generator& gen);  // N(0, std^2)
// Xavier/Glorot uniform for a 2-D (fan_out, fan_in) weight: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
void init_xavier_uniform(const torch::Tensor& p, at::Generator& gen);
void init_constant(const torch::Tensor& p, double value);

// Linear layers: Xavier weight and zero bias, or everything zero (the "starts as identity" layers).
void init_linear_xavier(const torch::nn::Linear& layer, at::Generator& gen);
void init_linear_zero(const torch::nn::Linear& layer);
// LayerNorm: weight 1, bias 0.
void init_layer_norm(const torch::nn::LayerNorm& norm);

}  // namespace reel::model
