// `reel eval-run RUN_DIR [--watch]`: every checkpoint of a run evaluated once, in step order, into
// RUN_DIR/eval.jsonl (one JSON object per checkpoint: step, checkpoint, the accuracies, the
// fixed-t validation losses, seconds, and `dir` / `videos`: the samples under RUN_DIR/eval/step_N/
// written by `reel eval`). A checkpoint whose step eval.jsonl already holds is skipped, so a rerun
// (or a crash and a rerun) evaluates only new ones; eval.jsonl is rewritten atomically after each.
// With watch, it polls for new checkpoints (the run may not have started yet) until the run's
// last step (trainer.steps of RUN_DIR/recipe.yaml) is evaluated.
#pragma once

#include <string>

#include "trainer/eval.h"

namespace reel::trainer {

struct EvalRunOptions {
  std::string run_dir;
  bool watch = false;
  double poll_seconds = 30;
  double max_wait_seconds = 0;  // watch: give up after this long without a new checkpoint; 0 = never
  EvalOptions eval;             // prompts, prompt file, sampler settings, videos
};

// Returns the number of checkpoints evaluated by this call.
int eval_run(const EvalRunOptions& options);

}  // namespace reel::trainer
