// `reel eval --ckpt PATH --out DIR` and `reel eval tae --ckpt PATH --data DIR --out DIR2`.
#include <cstdio>
#include <string>

#include "common/error.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/eval.h"
#include "trainer/tae_trainer.h"

namespace reel::cli {

namespace {

int cmd_eval_tae(int argc, char** argv, int first) {
  Command c("reel eval tae --ckpt PATH --data DIR --out DIR2 [options]",
            "Reconstructs every held-out clip (DIR/val, or DIR itself) through a TAE checkpoint and writes\n"
            "DIR2/eval_tae.json: PSNR (dB) and SSIM overall, per bucket, for images and for videos; and\n"
            "side-by-side MP4s (original left, reconstruction right) of the first clips of each bucket.");
  c.option("ckpt", "PATH", "TAE checkpoint file, or a run dir / its checkpoints dir / `latest`")
      .option("data", "DIR", "dataset directory (its val/ split when it has one)")
      .option("out", "DIR2", "output directory")
      .option("videos", "N", "side-by-side MP4s per bucket (default 2)")
      .option("scale", "N", "upscaling of the MP4s for viewing (default 8)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  for (const char* key : {"ckpt", "data", "out"}) {
    if (!args->has(key)) fail("--", key, " is required (reel eval tae --help)");
  }
  nlohmann::json r = trainer::run_tae_eval(args->get("ckpt"), args->get("data"), args->get("out"),
                                           args->get_int("videos", 2), static_cast<int>(args->get_int("scale", 8)));
  std::printf("eval tae: PSNR %.2f dB  SSIM %.4f  over %lld clips (images %.2f dB, videos %.2f dB) -> %s/eval_tae.json\n",
              r["psnr"].get<double>(), r["ssim"].get<double>(), static_cast<long long>(r["clips"].get<int64_t>()),
              r["images"]["psnr"].get<double>(), r["videos"]["psnr"].get<double>(), args->get("out").c_str());
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv, int first) {
  if (first < argc && std::string(argv[first]) == "tae") return cmd_eval_tae(argc, argv, first + 1);
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
