// The video transformer's repeated Movie Gen block and its output head.
//
// Modulation (adaLN) is "adaLN-single" (PixArt-alpha; Movie Gen Audio's "one shared MLP with
// per-layer biases"): the transformer computes ONE Linear(dim -> 6*dim) on SiLU(time embedding)
// per sample, and every block adds its own learned (6, dim) table to it. A full Linear per block
// would add 6*dim^2 parameters per layer, 10.9B at the 30B size (the published size leaves no
// room for that); the shared form costs 6*dim per layer and is computed once per step.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "model/attention.h"
#include "model/layers.h"
#include "model/parallel_region.h"
#include "model/text_tokens.h"

namespace reel::model {

// x -> rms(x)*(1+scale_a)+shift_a -> self-attn -> x += gate_a * .
//   -> RMSNorm (affine) -> cross-attn to text (key padding mask) -> x += .
//   -> rms(x)*(1+scale_f)+shift_f -> SwiGLU -> x += gate_f * .
// The two modulated norms have no weight of their own (the modulation scales them).
class VideoBlockImpl : public torch::nn::Module {
 public:
  VideoBlockImpl(int64_t dim, int64_t heads, int64_t ffn_dim, double eps, bool qk_norm = false);
  // x (B, N, D); shared_mod (B, 6, D) from the transformer; text.tokens (B, S, D), text.mask (B, S)
  // -> (B, N, D)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& shared_mod, const TextTokens& text);
  // Xavier for attention/FFN; the modulation table and cross.out are zero, so gates are 0 and
  // the block starts as the identity (DiT's adaLN-Zero).
  void init_weights(at::Generator& gen);

  torch::Tensor modulation;  // (6, D): shift/scale/gate for attention, then shift/scale/gate for FFN
  SelfAttention attn{nullptr};
  RMSNorm cross_norm{nullptr};
  CrossAttention cross{nullptr};
  SwiGLU ffn{nullptr};
  // Applied to the modulation table and the cross-attention norm's weight where they are used
  // (sequence parallel: SequenceRegion::shared); empty: used as they are.
  ParallelRegion::Fn shared;

 private:
  double eps_;
};
TORCH_MODULE(VideoBlock);

// adaLN (shift, scale from its own Linear(dim -> 2*dim) on SiLU(time embedding)) + RMSNorm +
// Linear(dim -> out_dim). Both Linears start at zero, so the model's first prediction is 0.
class FinalLayerImpl : public torch::nn::Module {
 public:
  FinalLayerImpl(int64_t dim, int64_t out_dim, double eps);
  // x (B, N, D); time_act (B, D) = SiLU(time embedding) -> (B, N, out_dim)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time_act);
  void init_weights();  // all zero

  torch::nn::Linear adaln{nullptr};   // dim -> 2*dim: [shift | scale]
  torch::nn::Linear linear{nullptr};  // dim -> out_dim

 private:
  double eps_;
};
TORCH_MODULE(FinalLayer);

}  // namespace reel::model
