// The shared start of `reel train` and `reel bench step` (see launch.h).
#include "trainer/cli/launch.h"

#include <chrono>
#include <thread>

#include "data/loader.h"
#include "parallel/data_parallel.h"
#include "trainer/trainer.h"

#include "common/error.h"
#include "common/runtime.h"

namespace reel::cli {

std::optional<std::unique_ptr<TrainingLaunch>> TrainingLaunch::start(const std::string& recipe_path,
                                                                     const std::vector<std::string>& overrides) {
  const LaunchInfo launch = launch_info();
  std::unique_ptr<TrainingLaunch> l(new TrainingLaunch());
  try {
    // Every rank reads the same recipe and finds the same fault: rank 0 reports it.
    l->recipe_ = trainer::load_recipe(recipe_path, overrides);
    const trainer::ParallelSection& p = l->recipe_.parallel;
    l->dims_ = parallel::ParallelDims{int(p.dp_replicate), int(p.dp_shard), int(p.cp), int(p.tp)}.resolved(
        launch.world_size);
    const parallel::ParallelDims& d = l->dims_;
    if (l->recipe_.trainer.batch_threads > 1 && (d.dp_shard > 1 || d.cp > 1 || d.tp > 1))
      fail(l->recipe_.source, ": trainer.batch_threads = ", l->recipe_.trainer.batch_threads,
           " cannot be combined with FSDP, context or tensor parallel (", d.describe(),
           "); set trainer.batch_threads=0 or 1, or run replicas (parallel.dp_shard=1 parallel.cp=1 parallel.tp=1)");
    // the global batch must split evenly over the ranks that take different samples
    parallel::per_rank_batch(l->recipe_.data.batch_size, d.dp_replicate * d.dp_shard);
    if (d.cp > 1 || (d.tp > 1 && l->recipe_.parallel.sequence_parallel)) {  // and each sample's tokens over cp x tp
      std::vector<data::Bucket> buckets;
      for (const char* split : {"/train", "/val"}) {
        for (const data::Bucket& b : data::Dataset::open(l->recipe_.data.dir + split).buckets()) buckets.push_back(b);
      }
      trainer::check_token_split(l->recipe_, d, buckets);
    }
  } catch (const UserError&) {
    if (launch.rank == 0) throw;
    // mpirun aborts the job at the first non-zero exit: give rank 0 the time to print the message.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return std::nullopt;
  }
  if (launch.world_size > 1) {
    l->mpi_ = std::make_unique<parallel::MpiRuntime>();
    l->watchdog_ = std::make_unique<parallel::Watchdog>(parallel::WatchdogOptions{l->recipe_.parallel.timeout_s, 1.0});
    l->world_ = parallel::MpiCommunicator::world(*l->watchdog_);
    l->mesh_ = std::make_unique<parallel::Mesh>(*l->world_, l->dims_);
  }
  return l;
}

TrainingLaunch::~TrainingLaunch() {
  if (world_ && !std::uncaught_exceptions()) world_->barrier();
}

}  // namespace reel::cli
