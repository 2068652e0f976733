// Fully sharded data parallel (FSDP, ZeRO-3) over a group of ranks, and HSDP on top of it.
//
// A module's trainable parameters are split into units: one per name prefix given (a transformer
// block, "transformer.blocks.3."), and a root unit with every other parameter (embeddings, text
// encoders, the head). Each unit owns
//   - a flat fp32 master shard: 1/N of the unit's parameters, flattened in named_parameters()
//     order and zero-padded to a multiple of N; this rank's slice is [rank * S, (rank + 1) * S).
//     The optimizer steps on these shards, so its state is 1/N too;
//   - a full flat buffer in the compute dtype, into which the shards are all-gathered; the
//     module's parameters are views of it (set once, at construction). "Freeing" releases the
//     buffer's storage (its bytes go back to the allocator) without touching the views, so
//     tensors that autograd saved in forward see the re-gathered values in backward;
//   - a full flat gradient buffer, likewise released between uses; the parameters' .grad are views
//     of it, so autograd accumulates into it in place.
//
// Lifetime of a block unit in one step (run_unit is called by the model for each block):
//   forward   gather (waiting on the prefetch started by the previous block), start the next
//             block's gather, run, release the parameters (reshard_after_forward), and hook the
//             block's output;
//   backward  the hook fires when the output's gradient is complete, before the block's own
//             backward: gather again, prefetch the block before it, and reduce-scatter the
//             gradients of the block after it (whose backward has finished) into its shard,
//             asynchronously;
//   finish_backward  reduce-scatter the rest (block 0, the root), wait, add into the shards' .grad.
// The root unit stays gathered: it is re-gathered after every optimizer step.
//
// HSDP: with a replicate group of size R > 1, synchronize() averages the shard gradients over the
// replicas (one all_reduce). Gradients are averages over shard x replicate ranks, as one process
// would compute on the whole batch. clip_grad_norm uses the global norm over all shards.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parallel/communicator.h"

namespace reel::parallel {

struct FsdpOptions {
  bool reshard_after_forward = true;       // release a block's parameters after its forward
  bool prefetch = true;                    // gather the next block while this one computes
  torch::Dtype param_dtype = torch::kFloat32;   // the compute dtype the parameters are gathered in
  torch::Dtype reduce_dtype = torch::kFloat32;  // the dtype gradients are reduce-scattered in
};

class Fsdp {
 public:
  // Shards `module`'s trainable parameters. unit_prefixes name the block units in the order the
  // model runs them; every trainable parameter not under one of them joins the root unit. The
  // module's parameter values on the shard group's rank 0 (and the replicate group's rank 0) win.
  // Collective over `shard` and `replicate` (null or size 1: no HSDP). Every communicator and
  // the module must outlive this object.
  Fsdp(torch::nn::Module& module, const std::vector<std::string>& unit_prefixes, Communicator& shard,
       Communicator* replicate, FsdpOptions options = {});
  ~Fsdp();
  Fsdp(const Fsdp&) = delete;
  Fsdp& operator=(const Fsdp&) = delete;

  // The fp32 master shards, one per unit (blocks in order, then the root): the optimizer's
  // parameters. Their .grad is set by finish_backward.
  const std::vector<torch::Tensor>& shards() const { return shards_; }
  int64_t num_blocks() const { return static_cast<int64_t>(units_.size()) - 1; }

  // What the model's block runner calls for block `index` (collective over the shard group).
  torch::Tensor run_unit(int64_t index, const std::function<torch::Tensor()>& run);

  // Before a backward pass of a model that runs no block through run_unit (every parameter in the
  // root unit): the root's gradient buffer made ready for autograd to accumulate into. run_unit
  // does this itself.
  void prepare_root_gradients() { prepare_grads(*units_.back()); }
  // After each backward pass (each micro-batch): every unit's gradient reduce-scattered and added
  // into its shard's .grad (average over the shard group); full gradient buffers released.
  void finish_backward();
  // After the last micro-batch: HSDP's average over replicas (no-op without them).
  void synchronize();
  // Global gradient norm over every shard (collective); scales every shard's grad by
  // max_norm / norm when the norm exceeds max_norm. Returns the norm before clipping.
  // Under tensor parallelism each rank's shards hold its tp slices: `weights` (one per shard,
  // laid out like it: 1 for elements of cut weights, 1 / tp for whole ones, which every tp rank
  // holds alike) scale the squares, which are then summed over `also_over` too.
  double clip_grad_norm(double max_norm, const std::vector<torch::Tensor>* weights = nullptr,
                        Communicator* also_over = nullptr);
  void zero_grad();  // the shards' gradients to zero
  // After the optimizer changed the shards: the root unit re-gathered; blocks gather on use.
  void after_optimizer_step();

  // Whole tensors by parameter name (collective): for each unit, `shard_of(unit)` (a tensor laid
  // out like that unit's shard, e.g. the master shard or an optimizer moment) is all-gathered and
  // cut into the unit's parameters. fp32, on the CPU.
  std::vector<std::pair<std::string, torch::Tensor>> full_tensors(
      const std::function<torch::Tensor(int64_t unit)>& shard_of);
  // The reverse: this rank's shard of unit `unit`, built from whole tensors by name (local, no
  // communication). `full(name)` returns the tensor for a parameter, shaped like it.
  torch::Tensor shard_from_full(int64_t unit, const std::function<torch::Tensor(const std::string& name)>& full) const;
  int64_t num_units() const { return static_cast<int64_t>(units_.size()); }
  // Where this rank's shard of `unit` lies in each of the unit's parameters (in flat order, every
  // parameter listed): its flattened elements [begin, end) are shard[offset, offset + end - begin)
  // (begin == end: none of it is here). For writing each rank's part of a checkpoint.
  struct ShardSpan {
    std::string name;
    int64_t begin = 0, end = 0, offset = 0;
  };
  std::vector<ShardSpan> shard_spans(int64_t unit) const;
  // The parameter names of a unit, in flat order.
  std::vector<std::string> unit_names(int64_t unit) const;

  // Bytes of full (gathered) parameter and gradient storage held right now, on this rank.
  int64_t gathered_bytes() const;
  // The most gathered_bytes() seen since the last reset (what FSDP saves is visible here).
  int64_t peak_gathered_bytes() const { return peak_bytes_; }
  void reset_peak() { peak_bytes_ = gathered_bytes(); }

 private:
  struct Unit;
  void start_gather(Unit& u);
  void wait_gather(Unit& u);
  void release_params(Unit& u);
  void prepare_grads(Unit& u);
  void start_reduce(Unit& u);
  void complete_reduce(Unit& u);  // waits, adds into the shard's grad, releases the full gradient
  void pre_backward(int64_t index);
  void note_bytes();

  Communicator& shard_;
  Communicator* replicate_;
  FsdpOptions options_;
  std::vector<std::unique_ptr<Unit>> units_;  // blocks in order, then the root
  std::vector<torch::Tensor> shards_;
  int64_t peak_bytes_ = 0;
};

}  // namespace reel::parallel
