// The text-to-video model (see t2v.h).
#include "model/t2v.h"

#include "common/error.h"
#include "model/init.h"

namespace reel::model {

T2VModelImpl::T2VModelImpl(T2VOptions o) : options_(std::move(o)) {
  text = register_module("text", TextConditioner(options_.text, options_.transformer.dim));
  transformer = register_module("transformer", VideoTransformer(options_.transformer));
}

torch::Tensor T2VModelImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                    const std::vector<std::string>& captions) {
  return forward_with_text(x, t, encode_text(captions));
}

TextTokens T2VModelImpl::encode_text(const std::vector<std::string>& captions) { return encode_text(captions, {}); }

TextTokens T2VModelImpl::encode_text(const std::vector<std::string>& captions, const EncodedText& encoded) {
  if (captions.empty()) fail("encode_text: no captions; pass one string per sample (\"\" for unconditional)");
  return text->forward(captions, encoded);
}

torch::Tensor T2VModelImpl::forward_with_text(const torch::Tensor& x, const torch::Tensor& t, const TextTokens& text_tokens) {
  if (x.dim() >= 1 && text_tokens.tokens.size(0) != x.size(0)) {
    fail("batch mismatch: video shape ", x.sizes(), " but ", text_tokens.tokens.size(0),
         " captions; pass one caption per sample");
  }
  return transformer(x, t, text_tokens);
}

void T2VModelImpl::init_weights(uint64_t seed) {
  auto gen = make_init_generator(seed);
  text->init_weights(gen);
  transformer->init_weights(gen);
}

std::vector<std::string> T2VModelImpl::block_prefixes() const {
  std::vector<std::string> prefixes;
  for (size_t i = 0; i < transformer->block_list().size(); ++i) prefixes.push_back(cat("transformer.blocks.", i, "."));
  return prefixes;
}

}  // namespace reel::model
