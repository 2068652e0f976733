// Writing one checkpoint file from many ranks at once (parallel HDF5, MPI-IO), each rank writing
// only the part of each tensor that it holds: an FSDP shard's span of a parameter, a
// tensor-parallel slice, or both. The file is the same "reel-ckpt-1" file save_checkpoint writes
// (trainer/checkpoint.h): every tensor whole under its name, with the checksum of its whole bytes,
// which the ranks build from the CRC-64s of their own byte runs (crc64_combine) without gathering
// any tensor.
//
// Nobody holds the whole tensor, so each rank describes what it holds (a TensorShare). The
// writer checks, before creating the file, that the ranks' shares cover every byte of every tensor
// exactly once: a gap or an overlap (two ranks claiming the same elements, e.g. two replicas both
// writing) is an error naming the tensor, the byte range and the ranks.
#pragma once

#include <mpi.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trainer/checkpoint.h"

namespace reel::trainer {

// Along one dimension, the local indices [local, local + length) of a rank's tensor are the whole
// tensor's [whole, whole + length).
struct IndexSegment {
  int64_t local = 0, whole = 0, length = 0;
};

// One rank's share of a logical tensor.
struct TensorShare {
  std::vector<int64_t> shape;                      // the whole tensor's sizes
  torch::ScalarType dtype = torch::kFloat;
  std::vector<int64_t> local_shape;                // the tensor this rank holds (the whole one, or a slice)
  // Per dimension, increasing segments covering [0, local_shape[d]); empty: the local tensor is
  // the whole one. A column-parallel fused weight, for example, has one segment per block on dim 0.
  std::vector<std::vector<IndexSegment>> index_map;
  int64_t begin = 0, end = 0;                      // the local tensor's row-major elements this rank writes
  torch::Tensor data;                              // those elements: 1-D, end - begin, dtype (any device)
};

// The whole of `t`, written by this rank when `writes` (else an empty share of the same tensor).
TensorShare whole_share(const torch::Tensor& t, bool writes);

// A contiguous run of a share's elements: data[local, local + length) are the whole tensor's
// row-major elements [whole, whole + length).
struct ShareRun {
  int64_t whole = 0, local = 0, length = 0;
};
// A share's runs in its data's order (also increasing in `whole`); adjacent ones are merged.
// UserError (naming `name`) when the share is inconsistent: sizes, segments or range out of bounds.
std::vector<ShareRun> share_runs(const std::string& name, const TensorShare& share);

struct ShardedCheckpoint {
  int64_t step = 0;
  std::map<std::string, TensorShare> tensors;  // the same names, shapes and dtypes on every rank
  std::map<std::string, std::string> meta;     // rank 0's are written
};

// Collective over `comm`: every rank calls it with the same path, step and tensor names; every
// rank returns once `path` is complete and renamed into place, or throws the same UserError
// (naming the rank it came from). Written under "<path>.tmp.<pid of rank 0>", flushed and synced
// by every rank, renamed by rank 0: nothing partial is ever under `path`. `path` must be on a file
// system every rank sees. With comm == MPI_COMM_NULL it is save_checkpoint for one process.
void save_checkpoint_sharded(const std::string& path, const ShardedCheckpoint& ckpt, MPI_Comm comm);

}  // namespace reel::trainer
