// The sampler: integrates the flow ODE from noise to data with Euler steps on Movie Gen's
// linear-quadratic schedule and classifier-free guidance, decodes, and writes MP4s, a
// contact sheet and samples.jsonl.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "data/synth.h"
#include "model/t2v.h"
#include "model/tae.h"
#include "trainer/flow_matching.h"
#include "trainer/recipe.h"

namespace reel::trainer {

// Turns model-space tensors into RGB frames: pixels as they are (PixelDecoder), or latents
// through the temporal autoencoder's decoder (TaeDecoder).
class Decoder {
 public:
  virtual ~Decoder() = default;
  // x float (B, C, F', H', W') in model space -> uint8 (B, F, H, W, 3) with `frames` frames.
  virtual torch::Tensor decode(const torch::Tensor& x, int64_t frames) = 0;
  // The model-space shape of clips of a pixel bucket (what to generate for it).
  virtual data::Bucket model_bucket(const data::Bucket& pixels) const = 0;
};

// Pixels in [-1, 1] -> uint8 [0, 255].
class PixelDecoder : public Decoder {
 public:
  torch::Tensor decode(const torch::Tensor& x, int64_t frames = 0) override;
  data::Bucket model_bucket(const data::Bucket& pixels) const override { return pixels; }
};

// Latents -> pixels through a TAE (temporal tiling for long clips, Movie Gen's defaults).
class TaeDecoder : public Decoder {
 public:
  explicit TaeDecoder(model::TaeModel tae) : tae_(std::move(tae)) {}
  torch::Tensor decode(const torch::Tensor& x, int64_t frames) override;
  data::Bucket model_bucket(const data::Bucket& pixels) const override;

 private:
  model::TaeModel tae_;
};

// A model ready for sampling: weights from a checkpoint (EMA when the checkpoint has them).
struct InferenceModel {
  Recipe recipe;           // the recipe the checkpoint was trained with
  model::T2VModel model{nullptr};
  int64_t step = 0;
  bool ema = false;        // whether EMA weights were loaded
  std::string path;
  std::shared_ptr<Decoder> decoder;  // pixels, or the TAE of a latent model (meta "latent_tae")
};
InferenceModel load_inference_model(const std::string& checkpoint_path);  // any resolve_checkpoint_argument() form

// The model-space shape to generate for clips of `pixels` (a latent model: its latents' shape);
// UserError when the model's position tables do not cover it.
data::Bucket sample_shape(const InferenceModel& m, const data::Bucket& pixels);

struct GenerateOptions {
  int steps = 50;          // Euler steps on the linear-quadratic schedule
  double cfg = 7.5;        // guidance scale; 1 = no guidance
  data::Bucket bucket;     // output shape (frames x height x width, in pixels/latent units)
  int64_t fps = 8;         // the frame-rate token's value
  int64_t batch_size = 16; // prompts integrated together
  FlowMatchingOptions flow; // the starting noise (frame_correlation) and how the output is read
                           // (prediction, sigma_min); flow_options(recipe) of the checkpoint
  double stagger = 0;      // frame after frame (sample.stagger): frame f runs its `steps` steps
                           // round(stagger x steps x f / (F - 1)) steps after frame 0, waiting at
                           // t = 0 before and holding t = 1 after; needs a model.frame_time model
};

// Generates one clip per prompt; prompt i starts from noise seeded by seeds[i], so a clip does
// not depend on how prompts are batched. Returns float (N, C, F, H, W) in model space.
torch::Tensor generate(model::T2VModel& model, const std::vector<std::string>& prompts,
                       const std::vector<uint64_t>& seeds, const GenerateOptions& options);

// "NNN.mp4": the file write_samples gives clip `index`.
std::string sample_file_name(size_t index);
// Writes DIR/NNN.mp4 (upscaled by `scale`), DIR/contact_sheet.png and DIR/samples.jsonl
// (prompt, seed, file). clips: uint8 (N, F, H, W, 3).
void write_samples(const std::string& dir, const std::vector<std::string>& prompts,
                   const std::vector<uint64_t>& seeds, const torch::Tensor& clips, int fps, int scale);
// Its two halves, for ranks that each sample a share of the prompts: clip k as
// DIR/sample_file_name(indices[k]); and the contact sheet and samples.jsonl of all N clips.
void write_sample_videos(const std::string& dir, const std::vector<size_t>& indices, const torch::Tensor& clips,
                         int fps, int scale);
void write_sample_index(const std::string& dir, const std::vector<std::string>& prompts,
                        const std::vector<uint64_t>& seeds, const torch::Tensor& clips, int scale);

}  // namespace reel::trainer
