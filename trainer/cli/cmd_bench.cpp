// `reel bench step RECIPE`, `reel bench matmul` and `reel bench comm`.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "common/error.h"
#include "common/fs.h"
#include "common/runtime.h"
#include "data/loader.h"
#include "parallel/comm_bench.h"
#ifdef REEL_HAVE_NCCL
#include "parallel/cuda/nccl_communicator.h"
#endif
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/launch.h"
#include "trainer/metrics.h"
#include "trainer/recipe.h"
#include "trainer/step_measure.h"
#include "trainer/tae_trainer.h"
#include "trainer/task.h"
#include "trainer/trainer.h"

namespace reel::cli {
namespace {

int bench_matmul(int argc, char** argv, int first) {
  Command c("reel bench matmul [--size N] [--threads N]",
            "Measures this machine's fp32 matrix-multiply rate (N x N x N, all cores by default).");
  c.option("size", "N", "matrix size (default 1024)").option("threads", "N", "threads (default: every core)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  int threads = configure_threads(static_cast<int>(args->get_int("threads", 0)));
  int n = static_cast<int>(args->get_int("size", 1024));
  if (n < 16) fail("--size must be >= 16, got ", n);
  double f = trainer::measure_matmul_flops(n, 2.0);
  std::printf("matmul fp32 %dx%dx%d, %d threads: %.1f GFLOP/s\n", n, n, n, threads, f / 1e9);
  return 0;
}

int bench_comm(int argc, char** argv, int first) {
  Command c("mpirun -np N reel bench comm [--backend mpi|nccl] [--min-bytes B] [--max-bytes B] [--ops LIST] [--timeout S]",
            "Times all_reduce, all_gather, reduce_scatter and all_to_all of fp32 tensors over every rank (MPI on CPU\n"
            "tensors, or NCCL on each rank's GPU) for sizes doubling from --min-bytes to --max-bytes, as nccl-tests\n"
            "does: time per operation (slowest rank), algorithm bandwidth = size / time, bus bandwidth = algbw x\n"
            "2(n-1)/n (all_reduce) or (n-1)/n.");
  c.option("backend", "NAME", "mpi (CPU tensors, default) or nccl (GPU local_rank % devices; needs a build with\n"
                              "NCCL and a CUDA LibTorch)")
      .option("min-bytes", "B", "first size in bytes (default 1024)")
      .option("max-bytes", "B", "last size in bytes (default 268435456 = 256 MiB)")
      .option("ops", "LIST", "comma-separated operations (default all_reduce,all_gather,reduce_scatter,all_to_all)")
      .option("timeout", "S", "watchdog timeout in seconds (default 600)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  parallel::CommBenchOptions o;
  o.min_bytes = args->get_int("min-bytes", o.min_bytes);
  o.max_bytes = args->get_int("max-bytes", o.max_bytes);
  const std::string ops = args->get("ops", "");
  if (!ops.empty()) {
    o.ops.clear();
    for (size_t begin = 0; begin <= ops.size();) {
      size_t end = ops.find(',', begin);
      if (end == std::string::npos) end = ops.size();
      o.ops.push_back(ops.substr(begin, end - begin));
      begin = end + 1;
    }
  }
  const double timeout = args->get_double("timeout", 600);
  if (!(timeout > 0)) fail("--timeout must be > 0 seconds, got ", timeout);
  const std::string backend = args->get("backend", "mpi");
  if (backend != "mpi" && backend != "nccl") fail("--backend must be mpi or nccl, got '", backend, "'");
  if (backend == "nccl" && !torch::cuda::is_available())
    fail("bench comm --backend nccl: this reel's LibTorch (", TORCH_VERSION, ") sees no CUDA device (a CPU-only ",
         "LibTorch, or no GPU visible); build against a CUDA LibTorch (README, \"On a GPU\") or use --backend mpi");
#ifndef REEL_HAVE_NCCL
  if (backend == "nccl")
    fail("bench comm --backend nccl: this reel was built without NCCL (REEL_CUDA=OFF, or no CUDA toolkit or nccl.h ",
         "found at configure time; see the feature summary cmake prints)");
#endif
  parallel::MpiRuntime mpi;
  parallel::Watchdog watchdog({timeout, 1.0});
  auto world = parallel::MpiCommunicator::world(watchdog);
  parallel::Communicator* comm = world.get();
  std::unique_ptr<parallel::Communicator> nccl;
#ifdef REEL_HAVE_NCCL
  if (backend == "nccl") {
    const int device = launch_info().local_rank % static_cast<int>(torch::cuda::device_count());
    CUDA_CHECK(cudaSetDevice(device));
    o.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device));
    nccl = std::make_unique<parallel::NcclCommunicator>(world->split_mpi(0, world->rank(), "nccl"), watchdog);
    comm = nccl.get();
  }
#endif
  const auto rows = parallel::bench_collectives(*comm, o);
  if (world->rank() == 0) {
    if (backend == "nccl")
      std::printf("bench comm: NCCL, %d ranks, fp32 CUDA tensors (%s)\n", world->size(), o.device.str().c_str());
    else
      std::printf("bench comm: MPI, %d ranks, fp32 CPU tensors\n", world->size());
    std::printf("%-15s %12s %6s %12s %12s %12s\n", "op", "bytes", "iters", "time_us", "algbw_GB/s", "busbw_GB/s");
    for (const auto& r : rows)
      std::printf("%-15s %12lld %6d %12.1f %12.3f %12.3f\n", r.op.c_str(), static_cast<long long>(r.bytes), r.iterations,
                  r.seconds * 1e6, r.algbw / 1e9, r.busbw / 1e9);
  }
  return 0;
}

// The TAE's training steps (model.name: tae): ms per step and samples/s, optionally profiled.
int bench_tae_steps(const trainer::Recipe& recipe, parallel::Mesh* mesh, int64_t steps, int64_t warmup,
                    const std::string& profile_path) {
  trainer::TaeTrainer t(recipe, false, mesh);
  nlohmann::json rec;
  for (int64_t i = 0; i < warmup; ++i) t.train_step(rec);
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  if (!profile_path.empty()) profile = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_path);
  int64_t samples = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    t.train_step(rec);
    samples += rec["samples"].get<int64_t>();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (profile) {
    profile.reset();
    std::printf("operator trace: %s\n", profile_path.c_str());
  }
  if (launch_info().rank == 0)
    std::printf("bench step %s (tae): %lld steps, %.1f ms/step, %.1f samples/s\n", recipe.source.c_str(),
                static_cast<long long>(steps), 1000 * seconds / steps, samples / seconds);
  return 0;
}

int bench_step(int argc, char** argv, int first) {
  Command c("reel bench step RECIPE [key.path=value ...] [--steps N] [--warmup N]",
            "Times training steps of a recipe and reports achieved FLOP/s against this machine's measured fp32\n"
            "matmul rate (1024^3, all cores). FLOPs = 3 x forward (a frozen text encoder's 1 x), forward =\n"
            "2 x matmul weights x tokens plus attention (self 4 N^2 d, cross 4 N L d per layer) and the text encoder. Writes to run.dir/bench/.");
  c.positional("RECIPE", "recipe file")
      .option("steps", "N", "timed steps (default 20)")
      .option("warmup", "N", "untimed steps first (default 3)")
      .option("profile", "FILE", "write a Chrome trace (chrome://tracing, Perfetto) of the timed steps' operators")
      .option("save", "N", "then time N steps that each end with a checkpoint, written in full and then in the\n"
                           "background (trainer.async_save) (default 0)")
      .flag("measure", "then run one step under LibTorch's profiler: the FLOPs of its matrix products and the\n"
                       "peak tensor memory it allocates, against the counted FLOPs and the state it starts with;\n"
                       "written to run.dir/bench/measure.json (what `reel plan` is checked against; use\n"
                       "trainer.batch_threads=1: other threads are not seen)")
      .min_positionals(1)
      .max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  std::vector<std::string> overrides(args->positionals().begin() + 1, args->positionals().end());
  const int64_t steps = args->get_int("steps", 20), warmup = args->get_int("warmup", 3);
  const int64_t saves = args->get_int("save", 0);
  if (steps < 1 || warmup < 0 || saves < 0) fail("--steps must be >= 1, --warmup and --save >= 0");
  auto launch = TrainingLaunch::start(args->positionals()[0], overrides);
  if (!launch) return kUserErrorExit;
  trainer::Recipe& recipe = (*launch)->recipe();
  recipe.run.dir += "/bench";  // train_step() alone: no validation or checkpoints while timing
  const std::string profile_path = args->get("profile", "");
  if (recipe.model.name == "tae") return bench_tae_steps(recipe, (*launch)->mesh(), steps, warmup, profile_path);
  trainer::Trainer t(recipe, false, (*launch)->mesh());
  const bool rank0 = launch_info().rank == 0;
  for (int64_t i = 0; i < warmup; ++i) t.train_step();
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  if (!profile_path.empty()) profile = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_path);
  double seconds = 0, flops = 0, comm = 0;
  int64_t samples = 0, tokens = 0;
  for (int64_t i = 0; i < steps; ++i) {
    trainer::StepStats s = t.train_step();
    seconds += s.seconds;
    comm += s.comm_seconds;
    flops += s.flops;
    samples += s.samples;
    tokens += s.tokens;
  }
  if (profile) {
    profile.reset();  // writes the trace
    std::printf("operator trace: %s\n", profile_path.c_str());
  }
  // The matmul rate again, on every rank at once as at the start: a shared host that was slow
  // when the trainer measured would otherwise inflate the share. The higher of the two is the
  // reference, so a slow moment can only lower the reported share.
  const double rate_before = t.matmul_flops(), rate_after = t.measure_matmul_rate(1.0);
  const double reference = std::max(rate_before, rate_after);
  // A step followed by a checkpoint (collective under a mesh), written in full or in the
  // background; the background write of one step overlaps the next step.
  double save_ms[2] = {0, 0};
  for (int async = 0; async < 2 && saves > 0; ++async) {
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < saves; ++i) {
      t.train_step();
      t.save_checkpoint(async == 1);
    }
    save_ms[async] = 1000 * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / saves;
    t.wait_for_save();
  }
  if (!rank0) return 0;
  const double rate = flops / seconds;
  std::printf("bench step %s: %lld steps, %.1f ms/step, %.1f samples/s, %.0f tokens/s\n",
              recipe.source.c_str(), static_cast<long long>(steps), 1000 * seconds / steps,
              samples / seconds, tokens / seconds);
  std::printf("  achieved %.1f GFLOP/s = %.1f%% of the measured matmul rate %.1f GFLOP/s (the higher of %.1f before and "
              "%.1f after the steps; %lld params)\n",
              rate / 1e9, 100 * rate / reference, reference / 1e9, rate_before / 1e9, rate_after / 1e9,
              static_cast<long long>(t.parameter_count()));
  if (saves > 0) {
    std::printf("  step + checkpoint (%lld each): %.1f ms in full, %.1f ms written in the background (a step alone: %.1f ms)\n",
                static_cast<long long>(saves), save_ms[0], save_ms[1], 1000 * seconds / steps);
  }
  if (args->flag("measure")) {
    double counted = 0;
    const trainer::StepMeasurement m = trainer::measure_step([&] { counted = t.train_step().flops; });
    const int64_t state = t.state_bytes();
    nlohmann::json j = {{"recipe", recipe.source},     {"matmul_flops", m.matmul_flops}, {"matmul_ops", m.matmul_ops},
                        {"counted_flops", counted},    {"peak_step_bytes", m.peak_bytes}, {"end_step_bytes", m.end_bytes}, {"state_bytes", state},
                        {"peak_bytes", state + m.peak_bytes}};
    if (rank0) {
      write_file_atomic(recipe.run.dir + "/measure.json", j.dump(2) + "\n");
      std::printf("  measured (one step, profiler): %.3f GFLOP in %lld matrix products (counted %.3f GFLOP, %.1f%%); "
                  "peak %.1f MB = %.1f MB of parameters, gradients, optimizer state and EMA + %.1f MB allocated by "
                  "the step -> %s/measure.json\n",
                  m.matmul_flops / 1e9, static_cast<long long>(m.matmul_ops), counted / 1e9,
                  100 * counted / std::max(m.matmul_flops, 1.0), (state + m.peak_bytes) / 1e6, state / 1e6,
                  m.peak_bytes / 1e6, recipe.run.dir.c_str());
    }
  }
  if (auto* mesh = (*launch)->mesh()) {
    std::printf("  mesh %s (rank 0's times): %.1f ms/step computing, %.1f ms/step waiting on collectives (%.1f%%)\n",
                mesh->dims().describe().c_str(), 1000 * (seconds - comm) / steps, 1000 * comm / steps,
                100 * comm / seconds);
  }
  return 0;
}

int bench_data(int argc, char** argv, int first) {
  Command c("reel bench data RECIPE [key.path=value ...] [--batches N] [--warmup N]",
            "Times the recipe's data loader alone: data.dir/train read, decoded and collated by data.workers\n"
            "background threads (data.prefetch batches ahead) into float batches of data.batch_size, as one\n"
            "process of `reel train` receives them. Reports samples/s and the MB/s of pixels read from the shards.");
  c.positional("RECIPE", "recipe file")
      .positional("key.path=value", "recipe overrides")
      .option("batches", "N", "timed batches (default 200)")
      .option("warmup", "N", "untimed batches first (default 10)")
      .min_positionals(1)
      .max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  std::vector<std::string> overrides(args->positionals().begin() + 1, args->positionals().end());
  const trainer::Recipe recipe = trainer::load_recipe(args->positionals()[0], overrides);
  const int64_t batches = args->get_int("batches", 200), warmup = args->get_int("warmup", 10);
  if (batches < 1 || warmup < 0) fail("--batches must be >= 1 and --warmup >= 0, got ", batches, " and ", warmup);
  const int threads = configure_threads(static_cast<int>(recipe.trainer.threads));
  auto data = std::make_shared<const data::Dataset>(data::Dataset::open(recipe.data.dir + "/train"));
  const data::LoaderOptions lo = trainer::loader_options(recipe);
  data::Loader loader(data, lo);
  for (int64_t i = 0; i < warmup; ++i) loader.next();
  int64_t samples = 0, bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < batches; ++i) {
    const data::Batch b = loader.next();
    samples += b.pixels.size(0);
    bytes += b.pixels.numel();  // uint8 pixels read from the shards: one byte per float out
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("bench data %s: %lld batches of %d, %d workers, prefetch %d, %d threads: %.0f samples/s, %.1f MB/s "
              "of pixels (%.3f ms per batch)\n",
              recipe.data.dir.c_str(), static_cast<long long>(batches), lo.batch_size, lo.workers, lo.prefetch, threads,
              samples / s, bytes / s / 1e6, 1e3 * s / batches);
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv, int first) {
  std::string sub = first < argc ? argv[first] : "";
  if (sub == "step") return bench_step(argc, argv, first + 1);
  if (sub == "matmul") return bench_matmul(argc, argv, first + 1);
  if (sub == "comm") return bench_comm(argc, argv, first + 1);
  if (sub == "data") return bench_data(argc, argv, first + 1);
  if (sub == "--help" || sub == "-h") {
    std::printf("usage: reel bench <subcommand>\n\nsubcommands:\n  step RECIPE    training-step FLOP/s and its share of the matmul rate\n  matmul         this machine's fp32 matmul rate\n  comm           collective times and bandwidths over every rank (run under mpirun)\n  data RECIPE    the data loader's samples/s and MB/s\n");
    return 0;
  }
  fail("unknown `reel bench` subcommand '", sub, "'; known: step, matmul, comm, data");
}

}  // namespace reel::cli
