// Glue between a recipe and the text-to-video task: the model options a recipe asks for, and
// the conditioning text the model reads (the frame-rate token in front of the caption).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "data/loader.h"
#include "model/t2v.h"
#include "trainer/checkpoint.h"
#include "trainer/flow_matching.h"
#include "trainer/recipe.h"

namespace reel::trainer {

// Model options from the recipe's model section. Position tables cover
// max_frames/max_height/max_width divided by the patch (rounded up).
model::T2VOptions t2v_options(const Recipe& recipe);

// The flow-matching options of the recipe's flow section.
FlowMatchingOptions flow_options(const Recipe& recipe);

// "FPS-8 a red circle slides to the left": the frame-rate token Movie Gen prepends.
// The empty caption (classifier-free guidance's unconditional input) stays empty.
std::string conditioning_text(const std::string& caption, int64_t fps);

// Transformer tokens for a clip of frames x height x width under the recipe's patch (frames
// rounded up to a multiple of the patch's t, as the model pads them).
int64_t video_tokens(const Recipe& recipe, int64_t frames, int64_t height, int64_t width);

// A warning when a token holds more values (in_channels x patch volume) than model.dim: the
// flow-matching target contains the noise, which the model must carry through at full rank,
// so such a model has a high loss floor (patch [2,8,8] on RGB at dim 256: 0.47 against 0.17
// for [1,8,8] after 200 steps, docs/PERFORMANCE.md). Empty when the patch fits or when the model
// predicts the clean data (flow.prediction: data), which it can carry.
std::string patch_width_warning(const Recipe& recipe);

// AdamW with the trainer section's lr, betas, eps and weight decay.
torch::optim::AdamWOptions adamw_options(const TrainerSection& tr);

// splitmix64 of (a, b): a stream of independent seeds from one recipe seed.
uint64_t mix_seed(uint64_t a, uint64_t b);

// The data loader options of a recipe's data section (batch_size is the global one: the caller
// divides it over its data-parallel ranks).
data::LoaderOptions loader_options(const Recipe& recipe);

// A checkpoint's data position, {"epoch", "batch", "global_batch", "batch_budget"}: global batches,
// the same whatever the mesh, so any mesh resumes there ...
std::string data_position_json(const data::LoaderPosition& position, const DataSection& data);
// ... and back. One written with another data.batch_size or data.batch_budget (Movie Gen changes
// the batch inside a stage: `--resume data.batch_size=3072`) counts batches of a plan the new size
// does not have: training goes on from the start of the next epoch, with a warning naming `path`
// and both sizes.
data::LoaderPosition parse_data_position(const std::string& json, const DataSection& data, const std::string& path);

// The resolved recipe a checkpoint carries (meta "recipe"), parsed without checking its paths;
// UserError naming `path` when there is none (a file not written by `reel train`).
Recipe checkpoint_recipe(const Checkpoint& ckpt, const std::string& path);

}  // namespace reel::trainer
