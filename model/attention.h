// Multi-head attention: the one attention() kernel entry point and the self/cross layers on it.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "model/parallel_region.h"

namespace reel::model {

// softmax(q k^T / sqrt(Dh) + mask) v, per batch and head.
//   q        (B, H, Nq, Dh)
//   k, v     (B, H, Nk, Dh)
//   key_mask bool (B, Nk), true = may be attended to; an undefined tensor attends to every key.
// Returns (B, H, Nq, Dh). Masked keys get the dtype's lowest finite score, so they receive zero
// weight and a row whose keys are all masked yields a finite (uniform) average instead of NaN.
// Plain LibTorch ops (1.13 has no scaled_dot_product_attention) inside one autograd function with a
// hand-written backward (see attention.cpp; not twice differentiable); this is the single place
// where a fused kernel would be swapped in.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& key_mask);

// The entropy (nats) of the attention weights softmax(q k^T / sqrt(Dh)) (masked keys excluded)
// of each head, averaged over the batch and the queries: (H), float32. log(Nk) for uniform
// weights (attention that only averages), 0 for a query that attends to a single key.
// A diagnostic (reel eval probe); no gradient.
torch::Tensor attention_entropy(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& key_mask);

// Bidirectional multi-head self-attention with a fused QKV projection (one Linear dim -> 3*dim)
// and an output projection. `bias` adds biases to both (the text encoder uses them, the video
// transformer does not, Llama-style).
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t dim, int64_t heads, bool bias);
  // x (B, N, dim); key_mask bool (B, N) or undefined -> (B, N, dim)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_mask = {});
  void init_weights(at::Generator& gen);  // Xavier, zero biases

  torch::nn::Linear qkv{nullptr};  // dim -> 3*dim: [q | k | v], heads contiguous inside each; no bias
  torch::nn::Linear out{nullptr};  // dim -> dim
  // With bias: the biases of q and v (2*dim). A key bias adds the same q.b_k to every score of
  // a row, which softmax ignores: its gradient is zero in exact arithmetic, and Adam would move
  // it by rounding noise alone (a run on another mesh would then differ there), so it has none.
  torch::Tensor qv_bias;
  ParallelRegion region;  // tensor parallel: see parallel_region.h
  // Diagnostics: with keep_entropy set, forward also stores attention_entropy() of its heads
  // (H) in `entropy` (an extra score product; off in training; one process only).
  bool keep_entropy = false;
  torch::Tensor entropy;
  // QK-norm: q and k each divided by their RMS over the head's Dh values (no weights), so a score
  // is a cosine times sqrt(Dh): attention cannot drift into plain averaging by shrinking q and k
  // (what the trained tiny models did, docs/PERFORMANCE.md fifteenth session). Per token and head:
  // unchanged by tensor, sequence or context parallelism.
  bool qk_norm = false;

  int64_t heads() const { return heads_; }
  // The heads this layer computes after its projections were cut to a subset of them (tensor
  // parallel); the head size stays dim / heads of the constructor.
  void set_local_heads(int64_t heads) { heads_ = heads; }

 private:
  int64_t heads_;
  int64_t head_dim_;
};
TORCH_MODULE(SelfAttention);

// Multi-head cross-attention from x to a context sequence, no biases. K and V come from one
// fused Linear(dim -> 2*dim) over the context.
class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t dim, int64_t heads);
  // x (B, N, dim); context (B, S, dim); context_mask bool (B, S), true = real -> (B, N, dim)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context,
                        const torch::Tensor& context_mask);
  // Xavier for q and kv; `zero_out` zeroes the output projection so the layer starts at 0.
  void init_weights(at::Generator& gen, bool zero_out);

  torch::nn::Linear q{nullptr};    // dim -> dim
  torch::nn::Linear kv{nullptr};   // dim -> 2*dim: [k | v]
  torch::nn::Linear out{nullptr};  // dim -> dim
  ParallelRegion region;  // tensor parallel: see parallel_region.h

  int64_t heads() const { return heads_; }
  void set_local_heads(int64_t heads) { heads_ = heads; }  // as SelfAttention's

 private:
  int64_t heads_;
  int64_t head_dim_;
};
TORCH_MODULE(CrossAttention);

}  // namespace reel::model
