// The text-to-video model: text conditioner + video transformer.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/text_conditioner.h"
#include "model/text_tokens.h"
#include "model/video_transformer.h"

namespace reel::model {

struct T2VOptions {
  VideoTransformerOptions transformer;        // the denoiser; its dim is the text width too
  std::vector<TextEncoderSlotOptions> text;   // at least one slot
};

// Parameters: text.<slot>.*, transformer.*. Construction allocates (weights are not meaningful
// until init_weights or a checkpoint load). Not thread-safe: one forward at a time.
class T2VModelImpl : public torch::nn::Module {
 public:
  explicit T2VModelImpl(T2VOptions o);
  // x (B, C, F, H, W); t (B) float in [0, 1]; captions: B full conditioning strings (the trainer
  // prepends "FPS-8 " and passes "" for caption dropout) -> velocity (B, C, F, H, W).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const std::vector<std::string>& captions);
  // For the sampler: encode once, reuse over steps. -> tokens (B, S, dim), mask (B, S)
  TextTokens encode_text(const std::vector<std::string>& captions);
  // The same with some frozen slots' encoder outputs given (TextConditioner::forward).
  TextTokens encode_text(const std::vector<std::string>& captions, const EncodedText& encoded);
  torch::Tensor forward_with_text(const torch::Tensor& x, const torch::Tensor& t, const TextTokens& text);
  // Seeded, deterministic (the same seed gives bit-identical weights on CPU).
  void init_weights(uint64_t seed);
  const T2VOptions& options() const { return options_; }
  // The parameter-name prefixes of the transformer blocks in the order they run
  // ("transformer.blocks.0.", ...): the units a parallelize step shards or recomputes.
  std::vector<std::string> block_prefixes() const;

  TextConditioner text{nullptr};
  VideoTransformer transformer{nullptr};

 private:
  T2VOptions options_;
};
TORCH_MODULE(T2VModel);

}  // namespace reel::model
