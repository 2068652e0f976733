// The text-to-video model's tensor-parallel plan (Megatron-LM): in every transformer block the
// self-attention, cross-attention and SwiGLU FFN split their heads / hidden units over the tp
// group; everything else (norms, adaLN modulation, embeddings, text encoders, the head) stays
// whole on every tp rank, which all see the same data.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "model/t2v.h"
#include "trainer/checkpoint_sharded.h"
#include "parallel/communicator.h"

namespace reel::trainer {

// How the plan cuts one weight: column-parallel keeps a slice of its output features (rows; a
// fused projection has `groups` blocks, each cut alike), row-parallel a slice of its input
// features (columns).
struct TensorParallelCut {
  bool column = true;
  int64_t groups = 1;
};

// Parameter name (as named_parameters() spells it) -> its cut. Parameters not named stay whole.
using TensorParallelPlan = std::map<std::string, TensorParallelCut>;

// The plan for `model`: column-parallel qkv, q, kv, w13; row-parallel out projections and w2.
TensorParallelPlan tensor_parallel_plan(const model::T2VModelImpl& model);

// This rank's part of a whole tensor shaped like the parameter (weights, Adam moments, EMA).
torch::Tensor tensor_parallel_slice(const TensorParallelCut& cut, const torch::Tensor& whole,
                                    const parallel::Communicator& tp);
// The whole tensor from every rank's part (collective over tp).
torch::Tensor tensor_parallel_gather(const TensorParallelCut& cut, const torch::Tensor& local,
                                     parallel::Communicator& tp);

// Where this rank's part (of local shape `local`) lies in the whole tensor, per dimension, for a
// checkpoint share (trainer/checkpoint_sharded.h); sets `whole` to the whole tensor's shape.
std::vector<std::vector<IndexSegment>> tensor_parallel_index_map(const TensorParallelCut& cut, c10::IntArrayRef local,
                                                                 int rank, int size, std::vector<int64_t>& whole);

// Cuts the planned weights to this rank's part (the parameter tensors keep their identity, so an
// optimizer built on them still holds them) and sets the layers' regions: copy_to_group on their
// input (and the cross-attention context), reduce_from_group on their output. With
// `sequence_parallel` the tokens between those layers are split over tp instead: the regions
// all-gather the sequence on entry and reduce-scatter it on exit, the transformer splits its
// tokens after the patch embedding and gathers them before the head, and what every token uses
// alike (modulation, norm weights) has its gradient summed over tp. The weights must be the same
// on every tp rank when this is called. UserError when the heads or the FFN width do not split
// over tp. Returns the plan applied (empty when tp has one rank). `tp` must outlive the model.
TensorParallelPlan apply_tensor_parallel(model::T2VModelImpl& model, parallel::Communicator& tp,
                                         bool sequence_parallel = false);

// Context parallel over `cp` (after apply_tensor_parallel, if any): the transformer keeps this
// rank's contiguous part of every sample's tokens (then split over tp with sequence parallel),
// the self-attention attends over the whole sequence by `mode` (parallel/context_parallel.h),
// and the head's output is gathered whole. No weight changes; the gradients count this rank's
// tokens cp times, so averaging them over dp_shard x cp (FSDP) gives one process's. `cp` must
// outlive the model.
void apply_context_parallel(model::T2VModelImpl& model, parallel::Communicator& cp, const std::string& mode);

}  // namespace reel::trainer
