// The text-encoder types (see text_encoder_types.h).
#include "model/text_encoder_types.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "model/init.h"

namespace reel::model {
namespace {

constexpr int64_t kPad = 0, kEos = 1, kBos = 2, kSpecials = 3;
constexpr int64_t kRelativeBuckets = 32, kRelativeMaxDistance = 128;
constexpr double kNormEps = 1e-6;

bool is_t5(const std::string& type) { return type == "byt5" || type == "ul2"; }

int64_t default_vocab(const std::string& type) {
  if (type == "byt5") return 384;      // 3 specials + 256 bytes + 125 unused extra ids (ByT5)
  if (type == "ul2") return 32128;     // the T5 / UL2 SentencePiece size
  if (type == "metaclip") return 49408;  // CLIP's BPE size
  return kByteVocab;
}

// A byte prefix of at most n bytes that does not split a UTF-8 character.
size_t utf8_prefix(const std::string& text, size_t n) {
  n = std::min(n, text.size());
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::vector<std::string> split_words(const std::string& text, bool lower_case) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(word);
    word.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      word.push_back(static_cast<char>(lower_case ? std::tolower(c) : c));
    } else {
      flush();
      if (!std::isspace(c)) words.emplace_back(1, static_cast<char>(c));
    }
  }
  flush();
  return words;
}

// Rows of ids (each without padding) -> padded (B, L) ids and mask.
TokenIds pad_rows(const std::vector<std::vector<int64_t>>& rows) {
  size_t longest = 1;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  const int64_t b = static_cast<int64_t>(rows.size()), l = static_cast<int64_t>(longest);
  auto ids = torch::full({b, l}, kPad, torch::kInt64);
  auto mask = torch::zeros({b, l}, torch::kBool);
  auto id = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<bool, 2>();
  for (int64_t i = 0; i < b; ++i) {
    for (size_t j = 0; j < rows[i].size(); ++j) {
      id[i][j] = rows[i][j];
      m[i][j] = true;
    }
  }
  return {ids, mask};
}

// softmax(q k^T / sqrt(Dh) + bias, over allowed keys) v; q, k, v (B, H, L, Dh).
torch::Tensor scored_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& bias, const torch::Tensor& allowed) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  if (bias.defined()) scores = scores + bias.to(scores.scalar_type());
  scores = scores.masked_fill(allowed.logical_not(), -1e9);
  return torch::matmul(torch::softmax(scores, -1), v);
}

// (B, L, H*Dh) <-> (B, H, L, Dh)
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
}
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), -1});
}

torch::nn::Linear linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

}  // namespace

const std::vector<std::string>& text_encoder_types() {
  static const std::vector<std::string> types = {"byte", "byt5", "ul2", "metaclip"};
  return types;
}

TextEncoderOptions resolved(const std::string& type, const TextEncoderOptions& o) {
  TextEncoderOptions r = o;
  if (r.ffn_dim == 0) r.ffn_dim = 4 * r.dim;
  if (r.head_dim == 0 && r.heads > 0) r.head_dim = r.dim / r.heads;
  if (r.vocab == 0) r.vocab = default_vocab(type);
  return r;
}

void validate(const std::string& type, const TextEncoderOptions& o) {
  const auto& types = text_encoder_types();
  if (std::find(types.begin(), types.end(), type) == types.end())
    fail("text encoder type = '", type, "' is unknown; known types: byte, byt5, ul2, metaclip");
  auto positive = [&](const char* field, int64_t v) {
    if (v <= 0) fail("text encoder (", type, ") option ", field, " = ", v, " must be positive");
  };
  auto unused = [&](const char* field, int64_t v, int64_t allowed) {
    if (v != 0 && v != allowed)
      fail("text encoder (", type, ") option ", field, " = ", v, " does not apply to this type; leave it 0");
  };
  if (type == "byte") {
    validate(o);
    unused("ffn_dim", o.ffn_dim, 4 * o.dim);
    unused("head_dim", o.head_dim, o.heads > 0 ? o.dim / o.heads : 0);
    unused("vocab", o.vocab, kByteVocab);
    return;
  }
  positive("dim", o.dim);
  positive("depth", o.depth);
  positive("heads", o.heads);
  if (o.ngram != 0) fail("text encoder (", type, ") option ngram = ", o.ngram, " applies to type byte only; leave it 0");
  if (o.ffn_dim < 0 || o.head_dim < 0 || o.vocab < 0)
    fail("text encoder (", type, ") options ffn_dim, head_dim and vocab must be >= 0 (0 = default)");
  const TextEncoderOptions r = resolved(type, o);
  if (type == "metaclip") {
    if (o.head_dim != 0 && o.head_dim * o.heads != o.dim)
      fail("text encoder (metaclip) option head_dim = ", o.head_dim, " must be dim / heads (or 0)");
    if (o.max_len < 3) fail("text encoder (metaclip) option max_len = ", o.max_len, " must be >= 3 (BOS, a word, EOS)");
  } else if (o.max_len < 2) {
    fail("text encoder (", type, ") option max_len = ", o.max_len, " must be >= 2 (a token and EOS)");
  }
  if (r.head_dim <= 0 || (o.head_dim == 0 && o.dim % o.heads != 0))
    fail("text encoder (", type, ") option heads = ", o.heads, " does not divide dim = ", o.dim,
         "; pick heads so that dim / heads is an integer, or set head_dim");
  if (type == "byt5" && r.vocab < kSpecials + 256)
    fail("text encoder (byt5) option vocab = ", r.vocab, " must be >= 259 (3 specials + 256 bytes)");
  if (r.vocab <= kSpecials) fail("text encoder (", type, ") option vocab = ", r.vocab, " must be > 3");
}

std::shared_ptr<TextEncoderBase> make_text_encoder(const std::string& type, const TextEncoderOptions& o) {
  validate(type, o);
  if (type == "byte") return ByteTextEncoder(o).ptr();
  if (type == "metaclip") return std::make_shared<ClipTextEncoderImpl>(resolved(type, o));
  return std::make_shared<T5EncoderImpl>(type, resolved(type, o));
}

int64_t text_encoder_param_count(const std::string& type, const TextEncoderOptions& options) {
  validate(type, options);
  const TextEncoderOptions o = resolved(type, options);
  const int64_t d = o.dim, f = o.ffn_dim;
  if (type == "byte") {
    int64_t layer = 2 * d + (3 * d * d + 2 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d);
    return kByteVocab * d + (o.max_len + 2) * d + o.ngram * d * d + o.depth * layer + 2 * d;
  }
  if (type == "metaclip") {
    int64_t layer = 4 * d + 3 * d * d + 3 * d + d * d + d + 2 * d * f + f + d;
    return o.vocab * d + o.max_len * d + o.depth * layer + 2 * d;
  }
  const int64_t inner = o.heads * o.head_dim;
  return o.vocab * d + kRelativeBuckets * o.heads + o.depth * (2 * d + 4 * d * inner + 3 * d * f) + d;
}

TextEncoderCost text_encoder_cost(const std::string& type, const TextEncoderOptions& options) {
  validate(type, options);
  const TextEncoderOptions o = resolved(type, options);
  const double d = static_cast<double>(o.dim), f = static_cast<double>(o.ffn_dim);
  const double depth = static_cast<double>(o.depth);
  if (type == "byte") return {(static_cast<double>(o.ngram) + 12 * depth) * d * d, depth * d};
  if (type == "metaclip") return {depth * (4 * d * d + 2 * d * f), depth * d};
  const double inner = static_cast<double>(o.heads * o.head_dim);
  return {depth * (4 * d * inner + 3 * d * f), depth * inner};
}

TokenIds byt5_tokenize(const std::vector<std::string>& texts, int64_t max_len) {
  REEL_CHECK(!texts.empty() && max_len >= 2, "byt5_tokenize: ", texts.size(), " texts, max_len ", max_len);
  std::vector<std::vector<int64_t>> rows;
  for (const auto& text : texts) {
    const size_t n = utf8_prefix(text, static_cast<size_t>(max_len - 1));
    std::vector<int64_t> row;
    for (size_t j = 0; j < n; ++j) row.push_back(kSpecials + static_cast<unsigned char>(text[j]));
    row.push_back(kEos);
    rows.push_back(std::move(row));
  }
  return pad_rows(rows);
}

TokenIds word_tokenize(const std::vector<std::string>& texts, int64_t vocab, int64_t max_len, bool lower_case,
                       bool bos) {
  REEL_CHECK(!texts.empty() && vocab > kSpecials && max_len >= (bos ? 3 : 2), "word_tokenize: ", texts.size(),
             " texts, vocab ", vocab, ", max_len ", max_len);
  const size_t room = static_cast<size_t>(max_len - (bos ? 2 : 1));
  std::vector<std::vector<int64_t>> rows;
  for (const auto& text : texts) {
    std::vector<std::string> words = split_words(text, lower_case);
    if (words.size() > room) words.resize(room);
    std::vector<int64_t> row;
    if (bos) row.push_back(kBos);
    for (const auto& w : words)
      row.push_back(kSpecials + static_cast<int64_t>(fnv1a(w) % static_cast<uint64_t>(vocab - kSpecials)));
    row.push_back(kEos);
    rows.push_back(std::move(row));
  }
  return pad_rows(rows);
}

int64_t token_count(const std::string& type, const TextEncoderOptions& options, const std::string& text) {
  const TextEncoderOptions o = resolved(type, options);
  if (type == "byte") return static_cast<int64_t>(utf8_prefix(text, static_cast<size_t>(o.max_len))) + 2;
  if (type == "byt5") return static_cast<int64_t>(utf8_prefix(text, static_cast<size_t>(o.max_len - 1))) + 1;
  const bool clip = type == "metaclip";
  const int64_t words = static_cast<int64_t>(split_words(text, clip).size());
  return std::min(words, o.max_len - (clip ? 2 : 1)) + (clip ? 2 : 1);
}

std::string quoted_text(const std::string& text) {
  static const std::string open_curly = "\xE2\x80\x9C", close_curly = "\xE2\x80\x9D";
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    size_t straight = text.find('"', at), curly = text.find(open_curly, at);
    if (straight == std::string::npos && curly == std::string::npos) break;
    const bool is_curly = curly < straight;
    const size_t begin = is_curly ? curly + open_curly.size() : straight + 1;
    const size_t end = text.find(is_curly ? close_curly : "\"", begin);
    if (end == std::string::npos) break;  // an unclosed quote quotes nothing
    if (!out.empty()) out += ' ';
    out += text.substr(begin, end - begin);
    at = end + (is_curly ? close_curly.size() : 1);
  }
  return out;
}

torch::Tensor t5_position_buckets(int64_t length, int64_t buckets, int64_t max_distance) {
  const int64_t half = buckets / 2, exact = half / 2;
  auto out = torch::empty({length, length}, torch::kInt64);
  auto a = out.accessor<int64_t, 2>();
  for (int64_t i = 0; i < length; ++i) {
    for (int64_t j = 0; j < length; ++j) {
      const int64_t rel = j - i, n = std::abs(rel);
      int64_t bucket = rel > 0 ? half : 0;
      if (n < exact) {
        bucket += n;
      } else {
        const double scaled = std::log(static_cast<double>(n) / exact) / std::log(static_cast<double>(max_distance) / exact);
        bucket += std::min<int64_t>(half - 1, exact + static_cast<int64_t>(scaled * static_cast<double>(half - exact)));
      }
      a[i][j] = bucket;
    }
  }
  return out;
}

T5LayerImpl::T5LayerImpl(const TextEncoderOptions& o) : heads_(o.heads), head_dim_(o.head_dim) {
  const int64_t inner = o.heads * o.head_dim;
  norm1 = register_module("norm1", RMSNorm(o.dim, kNormEps));
  q = register_module("q", linear(o.dim, inner, false));
  k = register_module("k", linear(o.dim, inner, false));
  v = register_module("v", linear(o.dim, inner, false));
  this->o = register_module("o", linear(inner, o.dim, false));
  norm2 = register_module("norm2", RMSNorm(o.dim, kNormEps));
  wi_0 = register_module("wi_0", linear(o.dim, o.ffn_dim, false));
  wi_1 = register_module("wi_1", linear(o.dim, o.ffn_dim, false));
  wo = register_module("wo", linear(o.ffn_dim, o.dim, false));
}

torch::Tensor T5LayerImpl::forward(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& allowed) {
  auto h = norm1(x);
  auto a = scored_attention(split_heads(q(h), heads_), split_heads(k(h), heads_), split_heads(v(h), heads_), bias,
                            allowed);
  auto y = x + o(merge_heads(a));
  h = norm2(y);
  return y + wo(torch::gelu(wi_0(h), "tanh") * wi_1(h));
}

void T5LayerImpl::init_weights(at::Generator& gen) {
  norm1->init_weights();
  norm2->init_weights();
  for (auto* l : {&q, &k, &v, &o, &wi_0, &wi_1, &wo}) init_linear_xavier(*l, gen);
}

T5EncoderImpl::T5EncoderImpl(std::string type, const TextEncoderOptions& o) : type_(std::move(type)), options_(o) {
  embed = register_module("embed", torch::nn::Embedding(o.vocab, o.dim));
  relative_bias = register_module("relative_bias", torch::nn::Embedding(kRelativeBuckets, o.heads));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    layer_list_.emplace_back(o);
    layers->push_back(layer_list_.back());
  }
  final_norm = register_module("final_norm", RMSNorm(o.dim, kNormEps));
}

TextTokens T5EncoderImpl::forward(const std::vector<std::string>& texts) {
  TokenIds ids = type_ == "byt5" ? byt5_tokenize(texts, options_.max_len)
                                 : word_tokenize(texts, options_.vocab, options_.max_len, false, false);
  auto device = embed->weight.device();
  auto mask = ids.mask.to(device);
  const int64_t l = ids.ids.size(1);
  auto buckets = t5_position_buckets(l, kRelativeBuckets, kRelativeMaxDistance).to(device);
  auto bias = relative_bias(buckets).permute({2, 0, 1}).unsqueeze(0);  // (1, H, L, L)
  auto allowed = mask.view({mask.size(0), 1, 1, l});
  auto x = embed(ids.ids.to(device));
  for (auto& layer : layer_list_) x = layer(x, bias, allowed);
  return {final_norm(x), mask};
}

void T5EncoderImpl::init_weights(at::Generator& gen) {
  init_normal(embed->weight, 0.02, gen);
  init_normal(relative_bias->weight, 0.02, gen);
  for (auto& layer : layer_list_) layer->init_weights(gen);
  final_norm->init_weights();
}

ClipLayerImpl::ClipLayerImpl(int64_t dim, int64_t heads, int64_t ffn_dim) : heads_(heads) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  qkv = register_module("qkv", linear(dim, 3 * dim, true));
  out = register_module("out", linear(dim, dim, true));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  fc1 = register_module("fc1", linear(dim, ffn_dim, true));
  fc2 = register_module("fc2", linear(ffn_dim, dim, true));
}

torch::Tensor ClipLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& allowed) {
  auto parts = qkv(layer_norm(norm1, x)).chunk(3, -1);
  auto a = scored_attention(split_heads(parts[0], heads_), split_heads(parts[1], heads_),
                            split_heads(parts[2], heads_), {}, allowed);
  auto y = x + out(merge_heads(a));
  auto h = fc1(layer_norm(norm2, y));
  return y + fc2(h * torch::sigmoid(1.702 * h));  // QuickGELU
}

void ClipLayerImpl::init_weights(at::Generator& gen) {
  init_layer_norm(norm1);
  init_layer_norm(norm2);
  for (auto* l : {&qkv, &out, &fc1, &fc2}) init_linear_xavier(*l, gen);
}

ClipTextEncoderImpl::ClipTextEncoderImpl(const TextEncoderOptions& o) : options_(o) {
  embed = register_module("embed", torch::nn::Embedding(o.vocab, o.dim));
  pos = register_parameter("pos", torch::empty({o.max_len, o.dim}));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    layer_list_.emplace_back(o.dim, o.heads, o.ffn_dim);
    layers->push_back(layer_list_.back());
  }
  final_norm = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim})));
}

TextTokens ClipTextEncoderImpl::forward(const std::vector<std::string>& texts) {
  TokenIds ids = word_tokenize(texts, options_.vocab, options_.max_len, true, true);
  auto device = pos.device();
  auto mask = ids.mask.to(device);
  const int64_t l = ids.ids.size(1);
  auto causal = torch::ones({l, l}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril();
  auto allowed = causal.view({1, 1, l, l}).logical_and(mask.view({mask.size(0), 1, 1, l}));
  auto x = embed(ids.ids.to(device)) + pos.narrow(0, 0, l);
  for (auto& layer : layer_list_) x = layer(x, allowed);
  return {layer_norm(final_norm, x), mask};
}

void ClipTextEncoderImpl::init_weights(at::Generator& gen) {
  init_normal(embed->weight, 0.02, gen);
  init_normal(pos, 0.01, gen);
  for (auto& layer : layer_list_) layer->init_weights(gen);
  init_layer_norm(final_norm);
}

}  // namespace reel::model
