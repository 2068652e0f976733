// The text-encoder types a slot can hold, as Movie Gen's three (MOVIEGEN.md, "Text"):
//
//   byte      Reel's byte encoder (model/text_encoder.h): UTF-8 bytes, learned positions, n-grams.
//   byt5      ByT5's encoder, for quoted text: bytes + 3 as ids (pad 0, EOS 1, unknown 2), T5 layers.
//   ul2       UL2's encoder, prompt-level: words as ids, T5 layers.
//   metaclip  a (Long-prompt) MetaCLIP text tower, vision-aligned: lower-cased words as ids, CLIP
//             layers with a causal mask and learned positions (context 77 in CLIP, 256 in Movie Gen).
//
// T5 layers: pre-RMSNorm; attention without biases, heads x head_dim wide, plus a relative-position
// bias (32 buckets, max distance 128, bidirectional) learned per head and shared by all layers; a
// gated-GELU FFN (wo(gelu(wi_0 x) * wi_1 x)); a final RMSNorm. Unlike T5, scores are scaled by
// 1/sqrt(head_dim) (T5 folds that into its initialisation). CLIP layers: pre-LayerNorm, attention
// with biases, a QuickGELU MLP with biases, a final LayerNorm.
//
// Tokens. Reel has no vocabulary files: the word types split a text into words (runs of letters,
// digits and non-ASCII bytes) and single punctuation marks, and map each to 3 + FNV-1a(word) mod
// (vocab - 3); 0 pads, 1 ends (EOS), 2 starts (BOS, metaclip). Weights trained by Reel carry over
// between runs (the `weights` slot key); published UL2 or MetaCLIP weights would need their own
// tokenizers, which Reel does not read.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/layers.h"
#include "model/text_encoder.h"

namespace reel::model {

const std::vector<std::string>& text_encoder_types();  // byte, byt5, ul2, metaclip

// The options with the type's defaults filled in (ffn_dim, head_dim, vocab; see TextEncoderOptions).
TextEncoderOptions resolved(const std::string& type, const TextEncoderOptions& o);
// UserError naming the type and field when the options cannot build the encoder.
void validate(const std::string& type, const TextEncoderOptions& o);
std::shared_ptr<TextEncoderBase> make_text_encoder(const std::string& type, const TextEncoderOptions& o);

// Exact parameter count (sum of numel() over the built encoder's parameters):
//   byte      see byte_text_encoder_param_count (model/counts.h)
//   byt5/ul2  V*D + 32*H + depth*(2*D + 4*D*I + 3*D*F) + D, I = H*head_dim
//   metaclip  V*D + max_len*D + depth*(4*D + 3*D^2 + 3*D + D^2 + D + 2*D*F + F + D) + 2*D
int64_t text_encoder_param_count(const std::string& type, const TextEncoderOptions& o);

// What one token costs in forward FLOPs: 2 * matmul_weights_per_token, plus the self-attention's
// 4 * L * attention_width per token for L tokens, per layer (depth * 4 * L^2 * width in all).
struct TextEncoderCost {
  double matmul_weights_per_token;  // byte: (ngram + 12*depth)*D^2; T5: depth*(4*D*I + 3*D*F);
                                    // metaclip: depth*(4*D^2 + 2*D*F)
  double attention_width;           // depth * (D, or I for T5 types)
};
TextEncoderCost text_encoder_cost(const std::string& type, const TextEncoderOptions& o);

// Tokenizers (ids and mask as the encoders see them).
TokenIds byt5_tokenize(const std::vector<std::string>& texts, int64_t max_len);
// lower_case and bos: metaclip; neither: ul2.
TokenIds word_tokenize(const std::vector<std::string>& texts, int64_t vocab, int64_t max_len, bool lower_case,
                       bool bos);
// The token count of one text as the type's encoder sees it, specials included.
int64_t token_count(const std::string& type, const TextEncoderOptions& o, const std::string& text);

// The text a slot with `input: quoted` encodes: every span between double quotes ("..." or
// U+201C ... U+201D), joined by one space; "" when the text quotes nothing.
std::string quoted_text(const std::string& text);

// T5 relative-position buckets, bidirectional: (L, L) int64, entry [i][j] for key j of query i.
torch::Tensor t5_position_buckets(int64_t length, int64_t buckets = 32, int64_t max_distance = 128);

class T5LayerImpl : public torch::nn::Module {
 public:
  T5LayerImpl(const TextEncoderOptions& o);  // resolved options
  // x (B, L, D); bias (1, H, L, L) added to the scores; allowed bool (B, 1, 1, L)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& allowed);
  void init_weights(at::Generator& gen);

  RMSNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Linear wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};

 private:
  int64_t heads_, head_dim_;
};
TORCH_MODULE(T5Layer);

// byt5 and ul2. Parameters: embed, relative_bias (32, H), layers.i.*, final_norm.
class T5EncoderImpl : public TextEncoderBase {
 public:
  T5EncoderImpl(std::string type, const TextEncoderOptions& o);
  TextTokens forward(const std::vector<std::string>& texts) override;
  void init_weights(at::Generator& gen) override;  // embeddings N(0, 0.02), Xavier linears, norms 1

  torch::nn::Embedding embed{nullptr};
  torch::nn::Embedding relative_bias{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm final_norm{nullptr};

 private:
  std::string type_;
  TextEncoderOptions options_;
  std::vector<T5Layer> layer_list_;
};

class ClipLayerImpl : public torch::nn::Module {
 public:
  ClipLayerImpl(int64_t dim, int64_t heads, int64_t ffn_dim);
  // x (B, L, D); allowed bool (B, 1, L, L): causal and not padding
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed);
  void init_weights(at::Generator& gen);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, out{nullptr}, fc1{nullptr}, fc2{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(ClipLayer);

// metaclip. Parameters: embed, pos (max_len, D), layers.i.*, final_norm.
class ClipTextEncoderImpl : public TextEncoderBase {
 public:
  explicit ClipTextEncoderImpl(const TextEncoderOptions& o);
  TextTokens forward(const std::vector<std::string>& texts) override;
  void init_weights(at::Generator& gen) override;

  torch::nn::Embedding embed{nullptr};
  torch::Tensor pos;
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};

 private:
  TextEncoderOptions options_;
  std::vector<ClipLayer> layer_list_;
};

}  // namespace reel::model
