// `reel train RECIPE [key=value ...] [--resume]`.
#include "common/error.h"
#include "common/runtime.h"
#include "parallel/data_parallel.h"
#include "parallel/mesh.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"
#include "parallel/parallel_dims.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/recipe.h"
#include "trainer/trainer.h"

namespace reel::cli {

int cmd_train(int argc, char** argv, int first) {
  Command c("reel train RECIPE [key.path=value ...] [--resume]",
            "Trains the model a YAML recipe describes. Everything the run writes goes under run.dir:\n"
            "recipe.yaml (the resolved recipe), metrics.jsonl, checkpoints/step_<N>.h5 and checkpoints/latest.");
  c.positional("RECIPE", "the recipe file (recipes/tiny/t2v.yaml is the demo)")
      .positional("key.path=value", "overrides, e.g. trainer.steps=100 run.dir=/tmp/x seed=3")
      .flag("resume", "continue from the checkpoint run.dir/checkpoints/latest names (start fresh if none)")
      .min_positionals(1)
      .max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  std::vector<std::string> overrides(args->positionals().begin() + 1, args->positionals().end());
  const LaunchInfo launch = launch_info();
  trainer::Recipe recipe;
  parallel::ParallelDims dims;
  try {
    // Every rank reads the same recipe and finds the same fault: rank 0 reports it, every rank exits 2.
    recipe = trainer::load_recipe(args->positionals()[0], overrides);
    const trainer::ParallelSection& p = recipe.parallel;
    dims = parallel::ParallelDims{int(p.dp_replicate), int(p.dp_shard), int(p.cp), int(p.tp)}.resolved(launch.world_size);
    if (dims.dp_shard > 1 || dims.cp > 1 || dims.tp > 1)
      fail("this job's mesh is ", dims.describe(), ", but FSDP (dp_shard > 1), context parallel and tensor parallel ",
           "are not built yet; replicate the model instead: parallel.dp_replicate=", launch.world_size,
           " parallel.dp_shard=1");
    parallel::batch_slice(recipe.data.batch_size, 0, dims.dp_replicate);  // the global batch must split evenly
  } catch (const UserError&) {
    if (launch.rank == 0) throw;
    return kUserErrorExit;
  }
  if (launch.world_size == 1) {
    trainer::Trainer t(recipe, args->flag("resume"));
    t.run();
    return 0;
  }
  // Replicas: MPI, the watchdog, the mesh's replicate group and data parallelism over it.
  parallel::MpiRuntime mpi;
  parallel::Watchdog watchdog({recipe.parallel.timeout_s, 1.0});
  auto world = parallel::MpiCommunicator::world(watchdog);
  parallel::Mesh mesh(*world, dims);
  parallel::DataParallel dp(mesh.group(parallel::MeshGroup::kReplicate));
  trainer::Trainer t(recipe, args->flag("resume"), &dp);
  t.run();
  world->barrier();  // no rank finalises MPI while another still needs it
  return 0;
}

}  // namespace reel::cli
