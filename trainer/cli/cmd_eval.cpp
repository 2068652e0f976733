// `reel eval --ckpt PATH --out DIR`, `reel eval tae --ckpt PATH --data DIR --out DIR2` and
// `reel eval probe --ckpt PATH`.
#include <cstdio>
#include <string>

#include "common/error.h"
#include "common/fs.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/eval_options.h"
#include "trainer/eval.h"
#include "trainer/probe.h"
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

// A name of `names` -> its index; UserError listing the names otherwise.
int name_index(const std::vector<std::string>& names, const std::string& name, const char* option) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  fail("--", option, " '", name, "' is not one of: ", known);
}

int cmd_eval_probe(int argc, char** argv, int first) {
  Command c("reel eval probe --ckpt PATH [options]",
            "What a text-to-video checkpoint predicts at the start of sampling, where a clip's layout is decided:\n"
            "for the prompts \"a <colour> <shape> moving left / right / up / down\" and \"... staying still\", the\n"
            "predicted clean clip from pure noise at flow time t, averaged over fixed noises and decoded; prints the\n"
            "colour's centroid in every frame, and the RMS differences between the predictions of prompts that differ\n"
            "in motion or in colour. A model that will draw motion moves the centroid in the prompt's direction here.\n"
            "Also the entropy of each block's self-attention weights per head: near log(tokens), attention only\n"
            "averages over the clip and cannot place a token by another (an object in the next frame by this one).");
  c.option("ckpt", "PATH", "checkpoint file, or a run dir / its checkpoints dir / `latest`")
      .option("t", "X", "flow time of the prediction, in [0, 1) (default 0: pure noise)")
      .option("color", "NAME", "colour of the prompts (default red)")
      .option("shape", "NAME", "shape of the prompts (default circle)")
      .option("noises", "N", "fixed noises averaged over (default 32)")
      .option("bucket", "FxHxW", "pixel shape (default: the recipe's sample.bucket)")
      .option("out", "FILE", "also write the result as JSON");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  if (!args->has("ckpt")) fail("--ckpt PATH is required (reel eval probe --help)");
  trainer::InferenceModel m = trainer::load_inference_model(args->get("ckpt"));
  trainer::ProbeOptions o;
  o.t = args->get_double("t", 0.0);
  o.color = name_index(data::color_names(), args->get("color", "red"), "color");
  o.shape = name_index(data::shape_names(), args->get("shape", "circle"), "shape");
  o.noises = static_cast<int>(args->get_int("noises", 32));
  o.bucket = data::Bucket::parse(args->get("bucket", m.recipe.sample.bucket));
  o.fps = m.recipe.sample.fps;
  const nlohmann::json r = trainer::probe_motion(m, o);
  std::printf("probe of %s (step %lld%s) at t = %g, %d noises, bucket %s: centroid of %s per frame (px)\n",
              m.path.c_str(), static_cast<long long>(m.step), m.ema ? ", EMA" : "", o.t, o.noises,
              o.bucket.name().c_str(), r["color"].get<std::string>().c_str());
  for (const auto& name : data::motion_names()) {
    const nlohmann::json& p = r["motions"][name];
    std::string xs, ys;
    char cell[32];
    for (const auto& v : p["x"]) xs += (std::snprintf(cell, sizeof(cell), " %5.2f", v.get<double>()), cell);
    for (const auto& v : p["y"]) ys += (std::snprintf(cell, sizeof(cell), " %5.2f", v.get<double>()), cell);
    std::printf("  %-6s x:%s\n         y:%s\n", name.c_str(), xs.c_str(), ys.c_str());
  }
  const nlohmann::json& d = r["rms"];
  std::printf("RMS difference: left-right %.5f  left-up %.5f  left-still %.5f  up-down %.5f  colour swapped %.5f\n",
              d["left_right"].get<double>(), d["left_up"].get<double>(), d["left_still"].get<double>(),
              d["up_down"].get<double>(), d["colour_swap"].get<double>());
  const nlohmann::json& a = r["attention"];
  std::printf("self-attention entropy per block and head (nats; %lld tokens, uniform %.3f):\n",
              static_cast<long long>(a["tokens"].get<int64_t>()), a["uniform_entropy"].get<double>());
  for (size_t i = 0; i < a["entropy"].size(); ++i) {
    std::printf("  block %zu:", i);
    for (const auto& e : a["entropy"][i]) std::printf(" %.3f", e.get<double>());
    std::printf("\n");
  }
  if (args->has("out")) write_file_atomic(args->get("out"), r.dump(2) + "\n");
  return 0;
}

}  // namespace

void add_eval_options(Command& c) {
  c.option("prompts", "N", "number of held-out prompts (default: the recipe's eval.prompts, 64)")
      .option("seed", "N", "prompt-set seed (default: eval.seed)")
      .option("prompts-file", "FILE", "sample these prompts instead (trainer/prompt_file.h; the truth they give is scored)")
      .option("steps", "N", "sampler steps (default: eval.steps)")
      .option("cfg", "X", "guidance scale (default: eval.cfg)")
      .option("stagger", "S", "frame after frame: the last frame's schedule lags S x steps (default: eval.stagger;\n"
                              "needs a model.frame_time model)")
      .option("data", "DIR", "dataset for the validation losses (default: the recipe's data.dir)")
      .flag("no-videos", "do not write the sampled MP4s");
}

trainer::EvalOptions eval_options(const Args& args) {
  trainer::EvalOptions o;
  o.prompts = static_cast<int>(args.get_int("prompts", -1));
  o.seed = args.get_int("seed", -1);
  o.steps = static_cast<int>(args.get_int("steps", -1));
  o.cfg = args.get_double("cfg", -1);
  o.stagger = args.get_double("stagger", -1);
  if (args.has("stagger") && !(o.stagger >= 0)) fail("--stagger must be >= 0, got ", o.stagger);
  o.data_dir = args.get("data", "");
  o.prompts_file = args.get("prompts-file", "");
  o.write_videos = !args.flag("no-videos");
  return o;
}

int cmd_eval(int argc, char** argv, int first) {
  if (first < argc && std::string(argv[first]) == "tae") return cmd_eval_tae(argc, argv, first + 1);
  if (first < argc && std::string(argv[first]) == "probe") return cmd_eval_probe(argc, argv, first + 1);
  Command c("reel eval --ckpt PATH --out DIR [options]",
            "Samples the fixed held-out prompt set (seeded prompts covering every colour x motion) from a\n"
            "checkpoint, measures colour, motion and shape accuracy from the decoded frames, adds the fixed-t\n"
            "validation losses, and writes DIR/eval.json with the per-prompt results, plus the videos.");
  c.option("ckpt", "PATH", "checkpoint file, or a run dir / its checkpoints dir / `latest` (the latest checkpoint)")
      .option("out", "DIR", "output directory");
  add_eval_options(c);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  if (!args->has("ckpt")) fail("--ckpt PATH is required");
  if (!args->has("out")) fail("--out DIR is required");
  nlohmann::json r = trainer::run_eval(args->get("ckpt"), args->get("out"), eval_options(*args));
  std::printf("eval: color_accuracy %s  motion_accuracy %s  shape_accuracy %s  val_loss %s  -> %s/eval.json\n",
              r["color_accuracy"].dump().c_str(), r["motion_accuracy"].dump().c_str(),
              r["shape_accuracy"].dump().c_str(), r["val_loss"].dump().c_str(), args->get("out").c_str());
  return 0;
}

}  // namespace reel::cli
