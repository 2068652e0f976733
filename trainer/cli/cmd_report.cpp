// `reel eval-run RUN_DIR [--watch]` and `reel report RUN_DIR`: a run's checkpoints evaluated, and
// drawn as one HTML page (trainer/eval_run.h, trainer/report.h).
#include <cstdio>

#include "common/error.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/eval_options.h"
#include "trainer/eval_run.h"
#include "trainer/report.h"

namespace reel::cli {

int cmd_eval_run(int argc, char** argv, int first) {
  Command c("reel eval-run RUN_DIR [--watch] [options]",
            "Evaluates every checkpoint of a run not yet in RUN_DIR/eval.jsonl, in step order: the held-out prompts\n"
            "(or --prompts-file) sampled and scored, and the fixed-t validation losses, appended to eval.jsonl, the\n"
            "samples under RUN_DIR/eval/step_N/. With --watch, waits for new checkpoints until the run's last step.");
  c.positional("RUN_DIR", "the run directory (run.dir)")
      .flag("watch", "keep polling for new checkpoints until trainer.steps is evaluated")
      .option("poll", "SECONDS", "watch: seconds between looks (default 30)")
      .option("max-wait", "SECONDS", "watch: stop after this long without a new checkpoint (default: never)")
      .min_positionals(1)
      .max_positionals(1);
  add_eval_options(c);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  trainer::EvalRunOptions o;
  o.run_dir = args->positionals()[0];
  o.watch = args->flag("watch");
  o.poll_seconds = args->get_double("poll", 30);
  o.max_wait_seconds = args->get_double("max-wait", 0);
  if (!(o.poll_seconds > 0) || o.max_wait_seconds < 0) fail("--poll must be > 0 and --max-wait >= 0 seconds");
  o.eval = eval_options(*args);
  const int n = trainer::eval_run(o);
  std::printf("eval-run: %d checkpoint(s) evaluated -> %s/eval.jsonl\n", n, o.run_dir.c_str());
  return 0;
}

int cmd_report(int argc, char** argv, int first) {
  Command c("reel report RUN_DIR [--out FILE] [--videos N]",
            "Writes one self-contained HTML page of a run (RUN_DIR/report.html): training loss and LR, validation\n"
            "loss per fixed t, evaluation metrics per checkpoint (`reel eval-run`), and each evaluated checkpoint's\n"
            "samples embedded and playing. Open it in any browser; no network is needed.");
  c.positional("RUN_DIR", "the run directory (run.dir)")
      .option("out", "FILE", "where to write the page (default RUN_DIR/report.html)")
      .option("videos", "N", "samples shown per evaluated checkpoint (default 8)")
      .option("embed-mb", "X", "embed videos in the page up to X MB, link the rest relative to it (default 64)")
      .min_positionals(1)
      .max_positionals(1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  trainer::ReportOptions o;
  o.run_dir = args->positionals()[0];
  o.out = args->get("out", "");
  o.videos_per_checkpoint = static_cast<int>(args->get_int("videos", 8));
  if (o.videos_per_checkpoint < 0) fail("--videos must be >= 0");
  const double embed_mb = args->get_double("embed-mb", 64);
  if (!(embed_mb >= 0)) fail("--embed-mb must be >= 0");
  o.embed_budget_bytes = static_cast<int64_t>(embed_mb * 1e6);
  std::printf("report: %s\n", trainer::write_report(o).c_str());
  return 0;
}

}  // namespace reel::cli
