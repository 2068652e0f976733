// Seeded parameter initialisers (see init.h).
#include "model/init.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "common/error.h"

namespace reel::model {
namespace {

// Copies CPU float values into `p` without recording the copy in autograd.
void assign(const torch::Tensor& p, const torch::Tensor& values) {
  torch::NoGradGuard no_grad;
  p.copy_(values);
}

torch::Tensor cpu_empty_like(const torch::Tensor& p) {
  return torch::empty(p.sizes(), torch::TensorOptions().dtype(torch::kFloat32));
}

}  // namespace

at::Generator make_init_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

void init_normal(const torch::Tensor& p, double std, at::Generator& gen) {
  assign(p, cpu_empty_like(p).normal_(0.0, std, gen));
}

void init_xavier_uniform(const torch::Tensor& p, at::Generator& gen) {
  REEL_CHECK(p.dim() == 2, "xavier init needs a 2-D weight, got ", p.sizes());
  double a = std::sqrt(6.0 / static_cast<double>(p.size(0) + p.size(1)));
  assign(p, cpu_empty_like(p).uniform_(-a, a, gen));
}

void init_constant(const torch::Tensor& p, double value) {
  torch::NoGradGuard no_grad;
  p.fill_(value);
}

void init_linear_xavier(const torch::nn::Linear& layer, at::Generator& gen) {
  init_xavier_uniform(layer->weight, gen);
  if (layer->bias.defined()) init_constant(layer->bias, 0.0);
}

void init_linear_zero(const torch::nn::Linear& layer) {
  init_constant(layer->weight, 0.0);
  if (layer->bias.defined()) init_constant(layer->bias, 0.0);
}

void init_layer_norm(const torch::nn::LayerNorm& norm) {
  if (norm->weight.defined()) init_constant(norm->weight, 1.0);
  if (norm->bias.defined()) init_constant(norm->bias, 0.0);
}

}  // namespace reel::model
