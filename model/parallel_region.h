// The seams through which a parallelize step (trainer/parallelize.h) runs the model on several
// ranks without the model knowing. ParallelRegion: a layer's heads or hidden units split over
// ranks, through functions applied to the layer's input, to its output and, for cross-attention,
// to the context it attends to. SequenceRegion: the tokens between those layers split over the
// same ranks. Empty functions (the default) leave the tensor as it is.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace reel::model {

struct ParallelRegion {
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  Fn enter;    // on the input, before the first projection
  Fn exit;     // on the output, after the last projection
  Fn context;  // cross-attention only: on the context, before its K/V projection
  // Self-attention only: softmax(q k^T / sqrt(Dh)) v of this rank's queries over the whole
  // sequence when the tokens are split over ranks (context parallel); q, k, v (B, H, N, Dh) hold
  // this rank's tokens. Empty: the model's own attention over the tokens it has.
  std::function<torch::Tensor(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v)> attend;

  static torch::Tensor apply(const Fn& f, const torch::Tensor& x) { return f ? f(x) : x; }
};

// Sequence and context parallelism: the transformer splits its tokens (and their positions) after
// the patch embedding and gathers them around its head: `gather` before it (sequence parallel: the
// head runs on every rank alike), `gather_out` after it (context parallel: each rank's head runs
// on its tokens). What every token uses alike (the per-sample adaLN modulation, the blocks'
// modulation tables and norm weights) passes through `shared`, so that each rank's gradient of
// it, from its tokens only, is summed over the ranks.
struct SequenceRegion {
  using DimFn = std::function<torch::Tensor(const torch::Tensor&, int64_t dim)>;
  DimFn split;       // the whole sequence (every rank holds it alike) -> this rank's part along dim
  DimFn gather;      // before the head: this rank's part -> the whole sequence
  DimFn gather_out;  // after the head: this rank's part of the output -> the whole output
  ParallelRegion::Fn shared;
};

}  // namespace reel::model
