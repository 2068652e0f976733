// The text-to-video model's tensor-parallel plan (Megatron-LM): in every transformer block the
// self-attention, cross-attention and SwiGLU FFN split their heads / hidden units over the tp
// group; everything else (norms, adaLN modulation, embeddings, text encoders, the head) stays
// whole on every tp rank, which all see the same data.
#pragma once

#include "model/t2v.h"
#include "parallel/communicator.h"

namespace reel::trainer {

// Cuts each block's projections to this rank's heads and hidden units (column-parallel qkv, q,
// kv, w13; row-parallel out projections and w2), and sets the layers' regions: copy_to_group on
// their input (and the cross-attention context), reduce_from_group on their output. The weights
// must be the same on every tp rank when this is called. UserError when the heads or the FFN
// width do not split over tp. `tp` must outlive the model.
void apply_tensor_parallel(model::T2VModelImpl& model, parallel::Communicator& tp);

}  // namespace reel::trainer
