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

// Samples [begin, end) of a global batch of `batch` samples that group rank `rank` of `size` takes.
struct BatchSlice {
  int64_t begin = 0, end = 0;
};
// UserError when `batch` does not split evenly over `size` ranks (names both and what to change).
BatchSlice batch_slice(int64_t batch, int rank, int size);

class DataParallel {
 public:
  explicit DataParallel(Communicator& group) : group_(group) {}  // `group` must outlive this object

  Communicator& group() { return group_; }
  // Every replica gets rank 0's values (collective).
  void broadcast_parameters(const std::vector<torch::Tensor>& params);
  // Gradients (fp32, defined or treated as zero) replaced by their mean over the group: flattened
  // into one buffer, one all_reduce (segmented by the backend), copied back (collective).
  void average_gradients(const std::vector<torch::Tensor>& params);
  // The mean over the group of a scalar (collective).
  double average(double value);

 private:
  Communicator& group_;
};

}  // namespace reel::parallel
