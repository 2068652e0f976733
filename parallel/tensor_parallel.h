// Tensor parallelism (Megatron-LM): the pieces a per-model plan is made of. A column-parallel
// Linear keeps a slice of its output features (rows of its weight), a row-parallel one a slice of
// its input features (columns); collectives.h supplies the region boundaries (copy_to_group in
// front of column-parallel layers, reduce_from_group after row-parallel ones).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "parallel/communicator.h"

namespace reel::parallel {

// Rows of weight w (out, in) for this rank of `tp`: the rows form `groups` equal blocks (a fused
// [q | k | v] projection has 3), each block is cut into tp.size() parts and this rank keeps part
// rank() of every block, in block order. Fatal when a block does not split evenly.
torch::Tensor column_shard(const torch::Tensor& w, int64_t groups, const Communicator& tp);

// Columns of w (out, in) for this rank: part rank() of tp.size() equal parts.
torch::Tensor row_shard(const torch::Tensor& w, const Communicator& tp);

// The inverse of column_shard over the whole group (collective): every rank's rows put back in
// place, for checkpoints and tests.
torch::Tensor gather_column_shards(const torch::Tensor& local, int64_t groups, Communicator& tp);
torch::Tensor gather_row_shards(const torch::Tensor& local, Communicator& tp);

}  // namespace reel::parallel
