// Small shared layers (see layers.h).
#include "model/layers.h"

#include <cmath>

#include "common/error.h"
#include "model/init.h"

namespace reel::model {

torch::Tensor layer_norm(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  const auto& w = norm->weight;
  return torch::layer_norm(x.to(w.scalar_type()), norm->options.normalized_shape(), w, norm->bias,
                           norm->options.eps());
}

torch::Tensor rms_norm(const torch::Tensor& x, double eps) {
  return x * torch::rsqrt(x.square().mean(-1, /*keepdim=*/true) + eps);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::empty({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) { return rms_norm(x, eps_) * weight; }

void RMSNormImpl::init_weights() { init_constant(weight, 1.0); }

int64_t swiglu_hidden_dim(int64_t dim) {
  int64_t h = (8 * dim + 2) / 3;  // ceil(8*dim/3)
  return (h + 31) / 32 * 32;
}

namespace {

class SwiGLUFunction : public torch::autograd::Function<SwiGLUFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& gate_up) {
    int64_t f = gate_up.size(-1) / 2;
    auto out = torch::silu(gate_up.narrow(-1, 0, f));
    out.mul_(gate_up.narrow(-1, f, f));
    ctx->save_for_backward({gate_up});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto gate_up = ctx->get_saved_variables()[0];
    const auto& grad = grad_outputs[0];
    int64_t f = gate_up.size(-1) / 2;
    auto gate = gate_up.narrow(-1, 0, f), up = gate_up.narrow(-1, f, f);
    auto grad_in = torch::empty_like(gate_up);
    auto grad_gate = grad_in.narrow(-1, 0, f), grad_up = grad_in.narrow(-1, f, f);
    torch::mul_out(grad_up, grad, torch::silu(gate));      // d/d up = silu(gate)
    at::silu_backward_out(grad_gate, grad * up, gate);     // d/d gate = up * silu'(gate)
    return {grad_in};
  }
};

}  // namespace

torch::Tensor swiglu_activation(const torch::Tensor& gate_up) {
  REEL_CHECK(gate_up.size(-1) % 2 == 0, "swiglu_activation wants an even last dim, got ", gate_up.sizes());
  return SwiGLUFunction::apply(gate_up);
}

SwiGLUImpl::SwiGLUImpl(int64_t dim, int64_t hidden) {
  w13 = register_module("w13", torch::nn::Linear(torch::nn::LinearOptions(dim, 2 * hidden).bias(false)));
  w2 = register_module("w2", torch::nn::Linear(torch::nn::LinearOptions(hidden, dim).bias(false)));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  return ParallelRegion::apply(region.exit, w2(swiglu_activation(w13(ParallelRegion::apply(region.enter, x)))));
}

void SwiGLUImpl::init_weights(at::Generator& gen) {
  init_linear_xavier(w13, gen);
  init_linear_xavier(w2, gen);
}

GeluMLPImpl::GeluMLPImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor GeluMLPImpl::forward(const torch::Tensor& x) { return fc2(torch::gelu(fc1(x))); }

void GeluMLPImpl::init_weights(at::Generator& gen) {
  init_linear_xavier(fc1, gen);
  init_linear_xavier(fc2, gen);
}

torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim) {
  REEL_CHECK(dim % 2 == 0, "timestep feature dim must be even, got ", dim);
  REEL_CHECK(t.dim() == 1, "t must be (B), got ", t.sizes());
  int64_t half = dim / 2;
  auto opts = t.options().dtype(torch::kFloat32);
  auto freqs = torch::exp(torch::arange(half, opts) * (-std::log(10000.0) / static_cast<double>(half)));
  auto args = (t.to(torch::kFloat32) * 1000.0).unsqueeze(1) * freqs.unsqueeze(0);  // (B, half)
  return torch::cat({torch::cos(args), torch::sin(args)}, 1);
}

TimestepEmbedderImpl::TimestepEmbedderImpl(int64_t freq_dim, int64_t dim) : freq_dim_(freq_dim) {
  fc1 = register_module("fc1", torch::nn::Linear(freq_dim, dim));
  fc2 = register_module("fc2", torch::nn::Linear(dim, dim));
}

torch::Tensor TimestepEmbedderImpl::forward(const torch::Tensor& t) {
  auto features = timestep_features(t, freq_dim_).to(fc1->weight.dtype());
  return fc2(torch::silu(fc1(features)));
}

void TimestepEmbedderImpl::init_weights(at::Generator& gen) {
  for (auto* layer : {&fc1, &fc2}) {
    init_normal((*layer)->weight, 0.02, gen);
    init_constant((*layer)->bias, 0.0);
  }
}

}  // namespace reel::model
