// The byte-level text encoder (see text_encoder.h).
#include "model/text_encoder.h"

#include <algorithm>

#include "common/error.h"
#include "model/init.h"

namespace reel::model {

void validate(const ByteTextEncoderOptions& o) {
  auto positive = [](const char* field, int64_t v) {
    if (v <= 0) fail("text encoder option ", field, " = ", v, " must be positive");
  };
  positive("dim", o.dim);
  positive("depth", o.depth);
  positive("heads", o.heads);
  positive("max_len", o.max_len);
  if (o.ngram < 0 || (o.ngram > 0 && o.ngram % 2 == 0))
    fail("text encoder option ngram = ", o.ngram, " must be 0 (none) or odd (a centred window)");
  if (o.dim % o.heads != 0) {
    fail("text encoder option heads = ", o.heads, " does not divide dim = ", o.dim,
         "; pick heads so that dim / heads is an integer");
  }
}

ByteIds byte_tokenize(const std::vector<std::string>& texts, int64_t max_len) {
  REEL_CHECK(!texts.empty(), "byte_tokenize needs at least one text");
  std::vector<size_t> lengths;
  lengths.reserve(texts.size());
  for (const auto& text : texts) {
    size_t n = std::min(text.size(), static_cast<size_t>(max_len));
    // Do not split a multi-byte character: back off while the first dropped byte continues one.
    while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    lengths.push_back(n);
  }
  int64_t b = static_cast<int64_t>(texts.size());
  int64_t l = 2 + static_cast<int64_t>(*std::max_element(lengths.begin(), lengths.end()));
  auto ids = torch::full({b, l}, kBytePad, torch::kInt64);
  auto mask = torch::zeros({b, l}, torch::kBool);
  auto id = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<bool, 2>();
  for (int64_t i = 0; i < b; ++i) {
    int64_t n = static_cast<int64_t>(lengths[i]);
    id[i][0] = kByteBos;
    for (int64_t j = 0; j < n; ++j) id[i][j + 1] = static_cast<unsigned char>(texts[i][j]);
    id[i][n + 1] = kByteEos;
    for (int64_t j = 0; j < n + 2; ++j) m[i][j] = true;
  }
  return {ids, mask};
}

TextEncoderLayerImpl::TextEncoderLayerImpl(int64_t dim, int64_t heads) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  attn = register_module("attn", SelfAttention(dim, heads, /*bias=*/true));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  mlp = register_module("mlp", GeluMLP(dim, 4 * dim));
}

torch::Tensor TextEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  auto h = x + attn(layer_norm(norm1, x), mask);
  return h + mlp(layer_norm(norm2, h));
}

void TextEncoderLayerImpl::init_weights(at::Generator& gen) {
  init_layer_norm(norm1);
  attn->init_weights(gen);
  init_layer_norm(norm2);
  mlp->init_weights(gen);
}

ByteTextEncoderImpl::ByteTextEncoderImpl(ByteTextEncoderOptions o) : options_(o) {
  validate(o);
  embed = register_module("embed", torch::nn::Embedding(kByteVocab, o.dim));
  pos = register_parameter("pos", torch::empty({o.max_len + 2, o.dim}));
  if (o.ngram > 0)
    ngram = register_module(
        "ngram", torch::nn::Conv1d(torch::nn::Conv1dOptions(o.dim, o.dim, o.ngram).padding(o.ngram / 2).bias(false)));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    layer_list_.emplace_back(o.dim, o.heads);
    layers->push_back(layer_list_.back());
  }
  final_norm = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim})));
}

TextTokens ByteTextEncoderImpl::forward(const std::vector<std::string>& texts) {
  auto ids = byte_tokenize(texts, options_.max_len);
  auto device = pos.device();
  auto mask = ids.mask.to(device);
  int64_t l = ids.ids.size(1);
  auto x = embed(ids.ids.to(device));  // (B, L, D)
  if (ngram) {
    x = x * mask.unsqueeze(-1).to(x.scalar_type());
    x = x + ngram(x.transpose(1, 2)).transpose(1, 2);
  }
  x = x + pos.narrow(0, 0, l);
  for (auto& layer : layer_list_) x = layer(x, mask);
  return {layer_norm(final_norm, x), mask};
}

void ByteTextEncoderImpl::init_weights(at::Generator& gen) {
  init_normal(embed->weight, 0.02, gen);
  init_normal(pos, 0.02, gen);
  if (ngram) init_xavier_uniform(ngram->weight.view({options_.dim, -1}), gen);  // fan_in dim*k
  for (auto& layer : layer_list_) layer->init_weights(gen);
  init_layer_norm(final_norm);
}

}  // namespace reel::model
