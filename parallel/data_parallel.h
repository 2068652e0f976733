// Data parallelism over replicas: every rank of the group holds the whole model, takes its slice
// of each global batch, and the gradients are averaged over the group before the optimizer step,
// so every replica takes the same step a single process would take on the whole batch (within
// float summation order). This is the dp_replicate axis of ParallelDims with dp_shard = cp = tp = 1;
// FSDP (sharded parameters and optimizer state) builds on the same group.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "parallel/communicator.h"

namespace reel::parallel {

// The samples each of `size` ranks takes from a global batch of `batch`. UserError when it does not
// split evenly (names both and what to change).
int64_t per_rank_batch(int64_t batch, int size);

// Clipping by a global norm whose parts live on several ranks: the sum of the squares of the
// tensors' gradients in fp64, each scaled by its weight (none: 1; a weight is a scalar or laid out
// like its tensor), for the caller to sum over the ranks that hold the other parts ...
torch::Tensor grad_square_sum(const std::vector<torch::Tensor>& params,
                              const std::vector<torch::Tensor>* weights = nullptr);
// ... and, from the total, every gradient scaled by max_norm / (norm + 1e-6) when that is below 1
// (the rule of torch::nn::utils::clip_grad_norm_). Returns the norm.
double clip_to_norm(const std::vector<torch::Tensor>& params, const torch::Tensor& square_sum, double max_norm);

class DataParallel {
 public:
  explicit DataParallel(Communicator& group) : group_(group) {}  // `group` must outlive this object

  Communicator& group() { return group_; }
  // Every replica gets rank 0's values (collective).
  void broadcast_parameters(const std::vector<torch::Tensor>& params);
  // Gradients (undefined ones count as zero) replaced by their mean over the group, and the mean
  // of `loss` returned: one buffer, one all_reduce (segmented by the backend) per step (collective).
  double average_gradients(const std::vector<torch::Tensor>& params, double loss);

 private:
  Communicator& group_;
};

}  // namespace reel::parallel
