// Starting a run from another run's weights (recipe key `init_from`): a stage of a staged recipe
// begins where the one before ended. Only the model's weights are taken ("model/..." tensors);
// the optimizer, EMA (it starts from the copied weights), step, data position and schedule start
// fresh. The rules, by parameter or buffer of the new model:
//   - the same name and shape in the checkpoint: copied;
//   - a position table whose length changed (transformer.pos_embed.t, .h or .w; Movie Gen grows
//     them between stages): h and w are resampled linearly over the same field of view (a
//     higher resolution of the same picture; position i of n covers (i + 0.5) / n), t keeps the
//     old rows and repeats the last one for new frames (longer clips at the same frame rate);
//   - not in the checkpoint (a new layer or text slot): keeps its fresh initialization;
//   - any other shape change: refused, naming the tensor and both shapes.
// Checkpoint tensors the model does not have (a dropped slot) are ignored. All are listed.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "trainer/checkpoint.h"

namespace reel::trainer {

struct InitReport {
  std::vector<std::string> copied, resampled, fresh, ignored;  // parameter / buffer names
};

// Applies the rules above to `model` in place (all or nothing: on a refused shape nothing is
// changed). UserError names ckpt.source, the tensor and both shapes.
InitReport init_from_checkpoint(torch::nn::Module& model, const Checkpoint& ckpt);

// Recipe key model.text_encoders[i].weights: text slot `slot`'s encoder ("text.<slot>.encoder.*")
// copied from the slot of the same name in `ckpt`. Every encoder tensor must be there with the
// same shape (UserError naming ckpt.source, the tensor and what to do); returns how many were copied.
int64_t load_text_encoder_weights(torch::nn::Module& model, const std::string& slot, const Checkpoint& ckpt);

// A position table (n, D) -> (m, D) by the rules above; `temporal` picks the t rule.
torch::Tensor resize_position_table(const torch::Tensor& table, int64_t m, bool temporal);

}  // namespace reel::trainer
