// `reel eval --ckpt PATH --out DIR`.
#include <cstdio>

#include "common/error.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/eval.h"

namespace reel::cli {

int cmd_eval(int argc, char** argv, int first) {
  Command c("reel eval --ckpt PATH --out DIR [options]",
            "Samples the fixed held-out prompt set (seeded prompts covering every colour x motion) from a\n"
            "checkpoint, measures colour, motion and shape accuracy from the decoded frames, adds the fixed-t\n"
            "validation losses, and writes DIR/eval.json with the per-prompt results, plus the videos.");
  c.option("ckpt", "PATH", "checkpoint file, or a run dir / its checkpoints dir / `latest` (the latest checkpoint)")
      .option("out", "DIR", "output directory")
      .option("prompts", "N", "number of prompts (default: the recipe's eval.prompts, 64)")
      .option("seed", "N", "prompt-set seed (default: eval.seed)")
      .option("steps", "N", "sampler steps (default: eval.steps)")
      .option("cfg", "X", "guidance scale (default: eval.cfg)")
      .option("data", "DIR", "dataset for the validation losses (default: the recipe's data.dir)")
      .flag("no-videos", "do not write the sampled MP4s");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  if (!args->has("ckpt")) fail("--ckpt PATH is required");
  if (!args->has("out")) fail("--out DIR is required");
  trainer::EvalOptions o;
  o.prompts = static_cast<int>(args->get_int("prompts", -1));
  o.seed = args->get_int("seed", -1);
  o.steps = static_cast<int>(args->get_int("steps", -1));
  o.cfg = args->get_double("cfg", -1);
  o.data_dir = args->get("data");
  o.write_videos = !args->flag("no-videos");
  nlohmann::json r = trainer::run_eval(args->get("ckpt"), args->get("out"), o);
  std::printf("eval: color_accuracy %.3f  motion_accuracy %s  shape_accuracy %.3f  val_loss %s  -> %s/eval.json\n",
              r["color_accuracy"].get<double>(), r["motion_accuracy"].dump().c_str(),
              r["shape_accuracy"].get<double>(), r["val_loss"].dump().c_str(), args->get("out").c_str());
  return 0;
}

}  // namespace reel::cli
