// The video transformer block and output head (see video_block.h).
#include "model/video_block.h"

#include "common/error.h"
#include "kernels/norm_modulate.h"
#include "model/init.h"

namespace reel::model {

VideoBlockImpl::VideoBlockImpl(int64_t dim, int64_t heads, int64_t ffn_dim, double eps, bool qk_norm) : eps_(eps) {
  modulation = register_parameter("modulation", torch::empty({6, dim}));
  attn = register_module("attn", SelfAttention(dim, heads, /*bias=*/false));
  attn->qk_norm = qk_norm;
  cross_norm = register_module("cross_norm", RMSNorm(dim, eps));
  cross = register_module("cross", CrossAttention(dim, heads));
  ffn = register_module("ffn", SwiGLU(dim, ffn_dim));
}

torch::Tensor VideoBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& shared_mod,
                                      const TextTokens& text) {
  // Per sample, not per token: (B, 6, D) -> six (B, 1, D) that broadcast over the N tokens.
  auto m = (shared_mod + ParallelRegion::apply(shared, modulation)).unsqueeze(2).unbind(1);
  const auto &shift_a = m[0], &scale_a = m[1], &gate_a = m[2];
  const auto &shift_f = m[3], &scale_f = m[4], &gate_f = m[5];

  auto h = kernels::norm_modulate(x, shift_a, scale_a, eps_);
  auto y = torch::addcmul(x, gate_a, attn(h));
  y = y + cross(rms_norm(y, eps_) * ParallelRegion::apply(shared, cross_norm->weight), text.tokens, text.mask);
  h = kernels::norm_modulate(y, shift_f, scale_f, eps_);
  return torch::addcmul(y, gate_f, ffn(h));
}

void VideoBlockImpl::init_weights(at::Generator& gen) {
  init_constant(modulation, 0.0);
  attn->init_weights(gen);
  cross_norm->init_weights();
  // Not zero: the cross-attention has no gate, and a zero output projection would also zero the
  // gradient reaching the text encoders, which then learn nothing for hundreds of steps.
  cross->init_weights(gen, /*zero_out=*/false);
  ffn->init_weights(gen);
}

FinalLayerImpl::FinalLayerImpl(int64_t dim, int64_t out_dim, double eps) : eps_(eps) {
  adaln = register_module("adaln", torch::nn::Linear(dim, 2 * dim));
  linear = register_module("linear", torch::nn::Linear(dim, out_dim));
}

torch::Tensor FinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& time_act) {
  auto m = adaln(time_act).unsqueeze(1).chunk(2, -1);  // 2 x (B, 1, D)
  return linear(kernels::norm_modulate(x, m[0], m[1], eps_));
}

void FinalLayerImpl::init_weights() {
  init_linear_zero(adaln);
  init_linear_zero(linear);
}

}  // namespace reel::model
