// `reel train RECIPE [key=value ...] [--resume]`.
#include "common/error.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/launch.h"
#include "trainer/preemption.h"
#include "trainer/recipe.h"
#include "trainer/tae_trainer.h"
#include "trainer/trainer.h"

namespace reel::cli {

int cmd_train(int argc, char** argv, int first) {
  Command c("reel train RECIPE [key.path=value ...] [--resume]",
            "Trains the model a YAML recipe describes. Everything the run writes goes under run.dir:\n"
            "recipe.yaml (the resolved recipe), metrics.jsonl, checkpoints/step_<N>.h5 and checkpoints/latest.\n"
            "SIGUSR1 or SIGTERM (to any rank, or to mpirun) ends the run after the current step with a\n"
            "checkpoint and exit code 75; --resume continues it exactly.");
  c.positional("RECIPE", "the recipe file (recipes/tiny/t2v.yaml is the demo)")
      .positional("key.path=value", "overrides, e.g. trainer.steps=100 run.dir=/tmp/x seed=3")
      .flag("resume", "continue from the checkpoint run.dir/checkpoints/latest names (start fresh if none)")
      .min_positionals(1)
      .max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  std::vector<std::string> overrides(args->positionals().begin() + 1, args->positionals().end());
  auto launch = TrainingLaunch::start(args->positionals()[0], overrides);
  if (!launch) return kUserErrorExit;
  if ((*launch)->recipe().model.name == "tae") {  // the temporal autoencoder
    trainer::TaeTrainer t((*launch)->recipe(), args->flag("resume"), (*launch)->mesh());
    return t.run() == trainer::RunEnd::kPreempted ? trainer::kPreemptedExit : 0;
  }
  trainer::Trainer t((*launch)->recipe(), args->flag("resume"), (*launch)->mesh());
  return t.run() == trainer::RunEnd::kPreempted ? trainer::kPreemptedExit : 0;
}

}  // namespace reel::cli
