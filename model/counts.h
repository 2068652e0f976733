// Analytic model size and cost: parameter counts and forward FLOPs from the options alone
// (nothing is allocated, so the 30B configuration can be sized on a laptop).
#pragma once

#include <cstdint>
#include <vector>

#include "model/t2v.h"

namespace reel::model {

// Exact parameter counts; each equals the sum of numel() over the built module's parameters().
//   byte encoder: 259*De + (max_len+2)*De + ngram*De^2 + depth*(12*De^2 + 12*De) + 2*De
//                 (other encoder types: text_encoder_param_count, model/text_encoder_types.h)
//   slot:         encoder + De*D + D (proj) + 2*D (LayerNorm)
//   transformer:  P*D + D (patch embed, P = C*pt*ph*pw) + (max_t+max_h+max_w)*D (positions)
//                 + freq*D + D + D^2 + D (time MLP) + 6*D^2 + 6*D (shared adaLN)
//                 + D^2 + D (text_pool, only with pooled_text)
//                 + depth*(8*D^2 + 3*D*F + 7*D) + 2*D^2 + 2*D + D*P + P (final layer)
//   where a block is 6*D (modulation table) + 4*D^2 (qkv, out) + D (cross norm)
//   + 4*D^2 (cross q, kv, out) + 3*D*F (SwiGLU), F = resolved_ffn_dim.
int64_t byte_text_encoder_param_count(const ByteTextEncoderOptions& o);
int64_t text_conditioner_param_count(const std::vector<TextEncoderSlotOptions>& slots, int64_t model_dim);
int64_t video_block_param_count(const VideoTransformerOptions& o);  // one block: 8*D^2 + 3*D*F + 7*D
int64_t video_transformer_param_count(const VideoTransformerOptions& o);
int64_t param_count(const T2VOptions& o);  // text conditioner + transformer

struct FlopCount {
  double matmul_params_per_token;  // weights a video token meets in Linear layers: W_v below
  double forward_flops;            // one sample, forward only; training ~ 3x this
  double block_flops;              // of which the blocks' attention and FFN (what tensor parallel splits)
  double token_flops;              // of which per video token (what context parallel splits)
  double frozen_text_flops = 0;    // of which in encoders that are not trained (forward only in training)
};

// Forward FLOPs for ONE sample with N = video_tokens transformer tokens and L = text_len tokens
// from EACH text slot (S = L * slots cross-attention tokens). A multiply-add counts 2; norms,
// activations, softmax and embedding lookups are not counted.
//   W_v = 2*P*D + depth*(6*D^2 + 3*D*F)        per video token (patch embed, qkv, out, cross q,
//                                               cross out, SwiGLU, final linear)
//   W_s = freq*D + D^2 + 6*D^2 + 2*D^2          once per sample (time MLP, shared and final adaLN;
//         + D^2 for text_pool with pooled_text)
//   W_t = sum_slots (E_i + De_i*D) * L_i + depth*2*D^2 * S   (text encoders, projections,
//                                               cross-attention K/V per block)
//   forward = 2*(W_v*N + W_s + W_t)
//           + depth*(4*N^2*D + 4*N*S*D)         self- and cross-attention scores and values
//           + sum_slots A_i*4*L_i^2             text-encoder self-attention
// where E_i and A_i are the slot's encoder's text_encoder_cost() (for the byte encoder
// E = (ngram + 12*depth)*De^2 and A = depth*De) and S = sum_i L_i.
// A frozen slot's encoder (not its projection) runs forward only in training: frozen_text_flops
// counts it, so a training step is 3 x forward - 2 x frozen_text_flops.
FlopCount t2v_forward_flops(const T2VOptions& o, int64_t video_tokens, int64_t text_len);
// The same with each slot's own token count L_i (a quoted-text slot reads fewer tokens).
FlopCount t2v_forward_flops(const T2VOptions& o, int64_t video_tokens, const std::vector<int64_t>& text_lens);

}  // namespace reel::model
