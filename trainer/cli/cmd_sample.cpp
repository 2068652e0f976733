// `reel sample`: clips for prompts from a checkpoint.
#include <nlohmann/json.hpp>

#include <fstream>

#include "common/error.h"
#include "common/log.h"
#include "data/synth.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/sampler.h"
#include "trainer/task.h"

namespace reel::cli {
namespace {

// A prompt file holds one prompt per line, or JSON lines {"prompt": ..., "seed": ...}.
void read_prompts(const std::string& path, uint64_t base_seed, std::vector<std::string>& prompts,
                  std::vector<uint64_t>& seeds) {
  std::ifstream in(path);
  if (!in) fail("cannot read prompt file '", path, "'");
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line[0] == '{') {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const std::exception& e) {
        fail(path, ":", number, ": not valid JSON: ", e.what());
      }
      if (!j.contains("prompt") || !j["prompt"].is_string()) fail(path, ":", number, ": needs a string \"prompt\"");
      prompts.push_back(j["prompt"].get<std::string>());
      seeds.push_back(j.contains("seed") ? j["seed"].get<uint64_t>() : base_seed + prompts.size() - 1);
    } else {
      prompts.push_back(line);
      seeds.push_back(base_seed + prompts.size() - 1);
    }
  }
  if (prompts.empty()) fail("prompt file '", path, "' holds no prompts");
}

}  // namespace

int cmd_sample(int argc, char** argv, int first) {
  Command c("reel sample --ckpt PATH (--prompt TEXT | --prompts FILE) --out DIR [options]",
            "Generates one clip per prompt with the Euler sampler on the linear-quadratic schedule and\n"
            "classifier-free guidance (EMA weights when the checkpoint has them), from noise drawn and read as\n"
            "the checkpoint's recipe trained it (flow.frame_correlation, flow.prediction). Writes DIR/NNN.mp4 (H.264),\n"
            "DIR/contact_sheet.png and DIR/samples.jsonl (prompt, seed, file).");
  c.option("ckpt", "PATH", "checkpoint file, or a run dir / its checkpoints dir / `latest` (the latest checkpoint)")
      .option("prompt", "TEXT", "one prompt")
      .option("prompts", "FILE", "prompt file: one prompt per line, or JSON lines {\"prompt\", \"seed\"}")
      .option("out", "DIR", "output directory")
      .option("steps", "N", "Euler steps (default: the recipe's sample.steps, 50 unless set)")
      .option("cfg", "X", "classifier-free guidance scale (default: the recipe's sample.cfg, 7.5 unless set)")
      .option("seed", "N", "noise seed of the first prompt; prompt i uses seed+i (default 0)")
      .option("bucket", "FxHxW", "output shape (default: the recipe's sample.bucket)")
      .option("scale", "N", "MP4 upscaling factor for viewing (default: the recipe's sample.scale)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  if (!args->has("ckpt")) fail("--ckpt PATH is required");
  if (!args->has("out")) fail("--out DIR is required");
  if (args->has("prompt") == args->has("prompts")) fail("give exactly one of --prompt TEXT or --prompts FILE");
  const uint64_t seed = static_cast<uint64_t>(args->get_int("seed", 0));
  std::vector<std::string> prompts;
  std::vector<uint64_t> seeds;
  if (args->has("prompt")) {
    prompts.push_back(args->get("prompt"));
    seeds.push_back(seed);
  } else {
    read_prompts(args->get("prompts"), seed, prompts, seeds);
  }
  trainer::InferenceModel m = trainer::load_inference_model(args->get("ckpt"));
  trainer::GenerateOptions g;
  g.steps = static_cast<int>(args->get_int("steps", m.recipe.sample.steps));
  g.cfg = args->get_double("cfg", m.recipe.sample.cfg);
  const data::Bucket pixels = data::Bucket::parse(args->get("bucket", m.recipe.sample.bucket));
  g.bucket = trainer::sample_shape(m, pixels);
  g.fps = m.recipe.sample.fps;
  g.flow = trainer::flow_options(m.recipe);
  int scale = static_cast<int>(args->get_int("scale", m.recipe.sample.scale));
  if (g.steps < 2) fail("--steps must be >= 2, got ", g.steps);
  if (scale < 1) fail("--scale must be >= 1, got ", scale);
  log_info("sampling ", prompts.size(), " prompt(s) from ", m.path, " (step ", m.step, ", ",
           m.ema ? "EMA" : "raw", " weights), ", g.steps, " steps, cfg ", g.cfg);
  torch::Tensor clips = m.decoder->decode(trainer::generate(m.model, prompts, seeds, g), pixels.frames);
  std::string out = args->get("out");
  trainer::write_samples(out, prompts, seeds, clips, static_cast<int>(g.fps), scale);
  log_info("wrote ", prompts.size(), " video(s), contact_sheet.png and samples.jsonl to ", out);
  return 0;
}

}  // namespace reel::cli
