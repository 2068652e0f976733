// Collective benchmarks (see comm_bench.h).
#include "parallel/comm_bench.h"

#include <chrono>
#include <functional>

#include "common/error.h"

namespace reel::parallel {
namespace {

double bus_factor(const std::string& op, int n) {
  if (n == 1) return 0;
  return op == "all_reduce" ? 2.0 * (n - 1) / n : double(n - 1) / n;
}

}  // namespace

std::vector<CommBenchRow> bench_collectives(Communicator& comm, const CommBenchOptions& o) {
  if (o.min_bytes < 4 || o.max_bytes < o.min_bytes)
    fail("bench comm: sizes must satisfy 4 <= min (", o.min_bytes, ") <= max (", o.max_bytes, ") bytes");
  if (o.warmup < 0 || !(o.seconds_per_size > 0)) fail("bench comm: warmup must be >= 0 and seconds per size > 0");
  const int n = comm.size();
  std::vector<CommBenchRow> rows;
  for (const std::string& op : o.ops) {
    for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 2) {
      // Element counts rounded down to a multiple of the group size (each rank's chunk equal).
      const int64_t elements = std::max<int64_t>(n, bytes / 4 / n * n);
      const auto opts = torch::TensorOptions().device(o.device);
      torch::Tensor big = torch::ones({elements}, opts), small = torch::ones({elements / n}, opts);
      std::function<void()> run;
      auto done = [&] {  // host clocks time an operation only once the device has finished it
        if (o.device.is_cuda()) torch::cuda::synchronize(o.device.index());
      };
      if (op == "all_reduce") run = [&] { comm.all_reduce(big); };
      else if (op == "all_gather") run = [&] { comm.all_gather(big, small); };
      else if (op == "reduce_scatter") run = [&] { comm.reduce_scatter(small, big); };
      else if (op == "all_to_all") run = [&, out = torch::empty_like(big)] { comm.all_to_all(out, big); };
      else fail("bench comm: unknown operation '", op, "'; known: all_reduce, all_gather, reduce_scatter, all_to_all");
      for (int i = 0; i < o.warmup; ++i) run();
      // Every rank runs the same number of iterations: rank 0 decides from its first timing.
      comm.barrier();
      done();
      auto t0 = std::chrono::steady_clock::now();
      run();
      done();
      torch::Tensor first = torch::tensor({std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
                                          torch::kDouble).to(o.device);
      comm.all_reduce(first, ReduceOp::kMax);
      const int iterations = std::max(3, std::min(1000, int(o.seconds_per_size / std::max(first.item<double>(), 1e-7))));
      comm.barrier();
      done();
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iterations; ++i) run();
      done();
      torch::Tensor elapsed = torch::tensor({std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
                                            torch::kDouble).to(o.device);
      comm.all_reduce(elapsed, ReduceOp::kMax);
      CommBenchRow row;
      row.op = op;
      row.bytes = elements * 4;
      row.iterations = iterations;
      row.seconds = elapsed.item<double>() / iterations;
      row.algbw = row.bytes / row.seconds;
      row.busbw = row.algbw * bus_factor(op, n);
      rows.push_back(row);
    }
  }
  return rows;
}

}  // namespace reel::parallel
