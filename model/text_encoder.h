// A byte-level text encoder (no vocabulary file): UTF-8 bytes -> contextual token features.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/attention.h"
#include "model/layers.h"
#include "model/text_tokens.h"

namespace reel::model {

// The sizes of one text encoder. The first five fields are those of the byte encoder below; the
// other types (model/text_encoder_types.h) read the rest too, 0 meaning the type's default.
struct TextEncoderOptions {
  int64_t dim = 128;    // token width
  int64_t depth = 2;    // transformer layers
  int64_t heads = 4;    // attention heads; must divide dim (byte, metaclip)
  int64_t max_len = 96; // byte: longest text in bytes; longer texts are cut (at a UTF-8 character
                        // boundary), so a sequence is at most max_len + 2 tokens with BOS/EOS.
                        // Other types: the longest token sequence, specials included.
  int64_t ngram = 0;    // width of the byte n-gram convolution (odd; 0 = none), see below; byte only
  int64_t ffn_dim = 0;  // hidden width of the feed-forward layer; 0 = 4 * dim (the byte encoder's, fixed)
  int64_t head_dim = 0; // byt5, ul2: width per head (T5's d_kv); 0 = dim / heads
  int64_t vocab = 0;    // byt5, ul2, metaclip: embedding rows; 0 = the type's default
};
using ByteTextEncoderOptions = TextEncoderOptions;

// Throws UserError naming the field when an option is out of range (as a byte encoder's).
void validate(const ByteTextEncoderOptions& o);

// What every text-encoder type is: texts in, token features and a padding mask out.
class TextEncoderBase : public torch::nn::Module {
 public:
  // texts: B strings (B >= 1) -> tokens (B, L, dim) on the parameters' device, mask (B, L) with
  // at least one true per row; a text's features do not depend on the other texts of the batch.
  virtual TextTokens forward(const std::vector<std::string>& texts) = 0;
  virtual void init_weights(at::Generator& gen) = 0;
};

// Token ids: bytes are 0..255, then BOS, EOS and the padding id (259 embedding rows in all).
constexpr int64_t kByteBos = 256;
constexpr int64_t kByteEos = 257;
constexpr int64_t kBytePad = 258;
constexpr int64_t kByteVocab = 259;

struct TokenIds {
  torch::Tensor ids;   // int64 (B, L): the tokens, then the padding id up to L
  torch::Tensor mask;  // bool (B, L), true = not padding
};
using ByteIds = TokenIds;  // byte_tokenize: BOS, bytes, EOS, then kBytePad
// Tokenises on the CPU. L = 2 + the longest (truncated) byte count in the batch. "" is valid
// (just BOS, EOS: the unconditional input for classifier-free guidance).
ByteIds byte_tokenize(const std::vector<std::string>& texts, int64_t max_len);

// One pre-norm bidirectional layer: x + attn(LN(x)), then x + mlp(LN(x)) with a 4x GELU MLP.
class TextEncoderLayerImpl : public torch::nn::Module {
 public:
  TextEncoderLayerImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);  // (B, L, D), (B, L) -> (B, L, D)
  void init_weights(at::Generator& gen);

  torch::nn::LayerNorm norm1{nullptr};
  SelfAttention attn{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  GeluMLP mlp{nullptr};
};
TORCH_MODULE(TextEncoderLayer);

// Learned byte and position embeddings, `depth` TextEncoderLayers with a key padding mask, a final
// LayerNorm. Parameters: embed (259, dim), pos (max_len + 2, dim), layers.i.*, final_norm.
// With ngram = k > 0, x = e + conv_k(e) over the byte embeddings e (padding zeroed first, so a
// text's features do not depend on the batch it is in) before positions are added: every token
// starts out knowing its k-byte neighbourhood. Without it, two shallow layers with learned
// absolute positions must first learn to attend to neighbours before a word means anything (most
// letters are shared between words); with k = 5 the tiny demo's colour accuracy went from 0.89
// to 1.0 in the same 1100 steps (docs/PERFORMANCE.md). Parameter ngram.weight (dim, dim, k), no bias.
class ByteTextEncoderImpl : public TextEncoderBase {
 public:
  explicit ByteTextEncoderImpl(ByteTextEncoderOptions o);
  // texts: B strings (B >= 1) -> tokens (B, L, dim) on the parameters' device, mask (B, L).
  TextTokens forward(const std::vector<std::string>& texts) override;
  void init_weights(at::Generator& gen) override;  // embeddings N(0, 0.02), Xavier linears, norms 1/0
  const ByteTextEncoderOptions& options() const { return options_; }
  const std::vector<TextEncoderLayer>& layer_list() const { return layer_list_; }

  torch::nn::Embedding embed{nullptr};
  torch::Tensor pos;  // (max_len + 2, dim)
  torch::nn::Conv1d ngram{nullptr};  // only when options.ngram > 0
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};

 private:
  ByteTextEncoderOptions options_;
  std::vector<TextEncoderLayer> layer_list_;  // the same modules as `layers`, typed
};
TORCH_MODULE(ByteTextEncoder);

}  // namespace reel::model
