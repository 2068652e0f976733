// Text conditioning over encoder slots (see text_conditioner.h).
#include "model/text_conditioner.h"

#include <set>

#include "common/error.h"
#include "model/init.h"
#include "model/text_encoder_types.h"

namespace reel::model {

void validate(const std::vector<TextEncoderSlotOptions>& slots) {
  if (slots.empty()) fail("text: no encoder slots; give at least one (e.g. {name: byte, type: byte})");
  std::set<std::string> names;
  for (const auto& s : slots) {
    if (s.name.empty() || s.name.find('.') != std::string::npos) {
      fail("text slot name = '", s.name, "' is invalid; use a non-empty name without '.'");
    }
    if (!names.insert(s.name).second) fail("text slot name = '", s.name, "' appears twice; names must be unique");
    if (s.input != "caption" && s.input != "quoted")
      fail("text slot '", s.name, "': input = '", s.input, "' is unknown; use caption or quoted");
    try {
      validate(s.type, s.encoder);
    } catch (const UserError& e) {
      fail("text slot '", s.name, "': ", e.what());
    }
  }
}

TextSlotImpl::TextSlotImpl(const TextEncoderSlotOptions& o, int64_t model_dim)
    : trainable_(o.trainable), quoted_(o.input == "quoted") {
  encoder = register_module("encoder", make_text_encoder(o.type, o.encoder));
  proj = register_module("proj", torch::nn::Linear(o.encoder.dim, model_dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({model_dim})));
  if (!trainable_) {
    for (auto& p : encoder->parameters()) p.set_requires_grad(false);
  }
}

std::string TextSlotImpl::input_of(const std::string& text) const { return quoted_ ? quoted_text(text) : text; }

TextTokens TextSlotImpl::encode(const std::vector<std::string>& texts) {
  if (!quoted_) return encoder->forward(texts);
  std::vector<std::string> inputs;
  inputs.reserve(texts.size());
  for (const auto& t : texts) inputs.push_back(input_of(t));
  return encoder->forward(inputs);
}

TextTokens TextSlotImpl::forward(const std::vector<std::string>& texts) {
  if (trainable_) return project(encode(texts));
  TextTokens encoded;
  {
    torch::NoGradGuard no_grad;
    encoded = encode(texts);
  }
  return project(encoded);
}

TextTokens TextSlotImpl::project(const TextTokens& encoded) {
  return {layer_norm(norm, proj(encoded.tokens)), encoded.mask};
}

void TextSlotImpl::init_weights(at::Generator& gen) {
  encoder->init_weights(gen);
  init_linear_xavier(proj, gen);
  init_layer_norm(norm);
}

TextConditionerImpl::TextConditionerImpl(std::vector<TextEncoderSlotOptions> slots, int64_t model_dim)
    : options_(std::move(slots)) {
  validate(options_);
  for (const auto& s : options_) slots_.push_back(register_module(s.name, TextSlot(s, model_dim)));
}

TextTokens TextConditionerImpl::forward(const std::vector<std::string>& texts) { return forward(texts, {}); }

TextTokens TextConditionerImpl::forward(const std::vector<std::string>& texts, const EncodedText& encoded) {
  for (const auto& [name, given] : encoded) {
    if (!slot(name)->trainable()) continue;
    fail("text slot '", name, "' is trainable: its encoder must run to be trained, so its output cannot be given ",
         "ahead of time; freeze it (trainable: false) to use precomputed outputs");
  }
  std::vector<torch::Tensor> tokens, masks;
  for (size_t i = 0; i < slots_.size(); ++i) {
    auto it = encoded.find(options_[i].name);
    TextTokens t;
    if (it == encoded.end()) {
      t = slots_[i](texts);
    } else {
      const TextTokens& given = it->second;
      REEL_CHECK(given.tokens.dim() == 3 && given.tokens.size(0) == int64_t(texts.size()) &&
                     given.tokens.size(2) == options_[i].encoder.dim,
                 "precomputed output of text slot '", options_[i].name, "' must be (", texts.size(), ", L, ",
                 options_[i].encoder.dim, "), got ", given.tokens.sizes());
      t = slots_[i]->project(given);
    }
    if (slots_.size() == 1) return t;
    tokens.push_back(t.tokens);
    masks.push_back(t.mask);
  }
  return {torch::cat(tokens, 1), torch::cat(masks, 1)};
}

TextSlot TextConditionerImpl::slot(const std::string& name) const {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (options_[i].name == name) return slots_[i];
  std::string known;
  for (const auto& o : options_) known += (known.empty() ? "" : ", ") + o.name;
  fail("no text slot named '", name, "'; this model's slots: ", known);
}

void TextConditionerImpl::init_weights(at::Generator& gen) {
  for (auto& slot : slots_) slot->init_weights(gen);
}

}  // namespace reel::model
