// Text conditioning: every text-encoder slot's tokens, projected to the model width and concatenated.
//
// Movie Gen uses three encoders (UL2, MetaCLIP, ByT5), each followed by its own Linear + LayerNorm
// to the model width, their outputs concatenated into one cross-attention sequence. Reel's slots
// do the same, with any type of model/text_encoder_types.h in any slot.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/text_encoder.h"
#include "model/text_tokens.h"

namespace reel::model {

struct TextEncoderSlotOptions {
  std::string name = "byte";    // unique among the slots; names the slot's parameters (no '.')
  std::string type = "byte";    // encoder type: byte, byt5, ul2, metaclip (model/text_encoder_types.h)
  TextEncoderOptions encoder;   // the encoder's sizes
  std::string input = "caption";  // what the encoder reads: "caption" (the whole text) or "quoted"
                                  // (only the text between double quotes, as Movie Gen's ByT5 slot)
  bool trainable = true;        // false: the encoder runs under NoGradGuard with requires_grad=false
                                // (its projection and LayerNorm still train, as in Movie Gen)
};

// Throws UserError naming the slot and field when a slot list cannot be built.
void validate(const std::vector<TextEncoderSlotOptions>& slots);

// One slot: encoder -> Linear(encoder dim -> model_dim) -> LayerNorm(model_dim).
class TextSlotImpl : public torch::nn::Module {
 public:
  TextSlotImpl(const TextEncoderSlotOptions& o, int64_t model_dim);
  TextTokens forward(const std::vector<std::string>& texts);  // -> (B, L, model_dim), (B, L)
  // The encoder's output over what this slot reads of each text (its `input`), not projected.
  TextTokens encode(const std::vector<std::string>& texts);
  // What this slot's encoder reads of a text: the text, or its quoted part.
  std::string input_of(const std::string& text) const;
  // The projection and LayerNorm alone, over the encoder's output (B, L, encoder dim) computed
  // earlier (a text cache, trainer/text_cache.h): forward(texts) == project(encoder(texts)).
  TextTokens project(const TextTokens& encoded);
  void init_weights(at::Generator& gen);
  bool trainable() const { return trainable_; }

  std::shared_ptr<TextEncoderBase> encoder;
  torch::nn::Linear proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  bool trainable_;
  bool quoted_;
};
TORCH_MODULE(TextSlot);

// Encoder outputs computed ahead of time, by slot name: (B, L, encoder dim) and mask (B, L).
using EncodedText = std::map<std::string, TextTokens>;

// Runs every slot and concatenates along L: tokens (B, sum L_i, model_dim), mask (B, sum L_i).
// Parameters are named "<slot name>.encoder.*", "<slot name>.proj.*", "<slot name>.norm.*".
class TextConditionerImpl : public torch::nn::Module {
 public:
  TextConditionerImpl(std::vector<TextEncoderSlotOptions> slots, int64_t model_dim);
  TextTokens forward(const std::vector<std::string>& texts);
  // As forward(texts), but a slot named in `encoded` skips its encoder and projects the given
  // output (B rows, one per text). UserError for a trainable slot (its encoder must run to
  // train) or an unknown slot name.
  TextTokens forward(const std::vector<std::string>& texts, const EncodedText& encoded);
  void init_weights(at::Generator& gen);  // slots in order
  const std::vector<TextEncoderSlotOptions>& slot_options() const { return options_; }
  TextSlot slot(const std::string& name) const;  // UserError for an unknown name

 private:
  std::vector<TextEncoderSlotOptions> options_;
  std::vector<TextSlot> slots_;
};
TORCH_MODULE(TextConditioner);

}  // namespace reel::model
