// Collective benchmarks as nccl-tests defines them: for a buffer of S bytes (all_reduce: the
// tensor; all_gather: the gathered output; reduce_scatter: the input; all_to_all: the buffer on
// each rank), time t = the slowest rank's mean over the timed iterations, algorithm bandwidth
// S / t, bus bandwidth = algbw x 2(n-1)/n for all_reduce and x (n-1)/n for the others.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace reel::parallel {

struct CommBenchOptions {
  int64_t min_bytes = 1 << 10;    // first size, >= 4
  int64_t max_bytes = 256 << 20;  // last size (sizes double), >= min_bytes
  int warmup = 2;                 // untimed iterations per size
  double seconds_per_size = 0.3;  // timed iterations run until about this long (at least 3)
  std::vector<std::string> ops = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all"};
  torch::Device device = torch::kCPU;  // where the buffers live: CPU (MPI) or this rank's GPU (NCCL)
};

struct CommBenchRow {
  std::string op;
  int64_t bytes = 0;
  int iterations = 0;
  double seconds = 0;  // per operation, slowest rank
  double algbw = 0;    // bytes/s
  double busbw = 0;    // bytes/s
};

// Collective over `comm`, fp32 buffers on options.device (CPU for the MPI backend, CUDA for NCCL,
// whose operations are timed to their completion on the device); every rank gets the same rows.
// UserError for bad options.
std::vector<CommBenchRow> bench_collectives(Communicator& comm, const CommBenchOptions& options);

}  // namespace reel::parallel
