// `reel sample`: clips for prompts from a checkpoint.
#include <nlohmann/json.hpp>

#include <fstream>

#include "common/error.h"
#include "common/log.h"
#include "common/runtime.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"
#include "data/synth.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/prompt_file.h"
#include "trainer/sampler.h"
#include "trainer/task.h"

namespace reel::cli {

int cmd_sample(int argc, char** argv, int first) {
  Command c("reel sample --ckpt PATH (--prompt TEXT | --prompts FILE) --out DIR [options]",
            "Generates one clip per prompt with the Euler sampler on the linear-quadratic schedule and\n"
            "classifier-free guidance (EMA weights when the checkpoint has them), from noise drawn and read as\n"
            "the checkpoint's recipe trained it (flow.frame_correlation, flow.prediction). Writes DIR/NNN.mp4 (H.264),\n"
            "DIR/contact_sheet.png and DIR/samples.jsonl (prompt, seed, file).");
  c.option("ckpt", "PATH", "checkpoint file, or a run dir / its checkpoints dir / `latest` (the latest checkpoint)")
      .option("prompt", "TEXT", "one prompt")
      .option("prompts", "FILE", "prompt file: one prompt per line, or JSON lines {\"prompt\", \"seed\", truth...}\n"
                                 "(trainer/prompt_file.h)")
      .option("out", "DIR", "output directory")
      .option("steps", "N", "Euler steps (default: the recipe's sample.steps, 50 unless set)")
      .option("cfg", "X", "classifier-free guidance scale (default: the recipe's sample.cfg, 7.5 unless set)")
      .option("stagger", "S", "frame after frame: the last frame's schedule lags S x steps (default: the recipe's\n"
                              "sample.stagger; needs a model.frame_time model)")
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
    for (const trainer::PromptSpec& p : trainer::read_prompt_file(args->get("prompts"), seed)) {
      prompts.push_back(p.prompt);
      seeds.push_back(p.seed);
    }
  }
  trainer::InferenceModel m = trainer::load_inference_model(args->get("ckpt"));
  trainer::GenerateOptions g;
  g.steps = static_cast<int>(args->get_int("steps", m.recipe.sample.steps));
  g.cfg = args->get_double("cfg", m.recipe.sample.cfg);
  g.stagger = args->get_double("stagger", m.recipe.sample.stagger);
  if (!(g.stagger >= 0)) fail("--stagger must be >= 0, got ", g.stagger);
  if (g.stagger > 0 && !m.recipe.model.frame_time)
    fail("--stagger ", g.stagger, ": ", m.path, " was trained without model.frame_time, so its frames cannot take ",
         "different noise levels; use --stagger 0");
  const data::Bucket pixels = data::Bucket::parse(args->get("bucket", m.recipe.sample.bucket));
  g.bucket = trainer::sample_shape(m, pixels);
  g.fps = m.recipe.sample.fps;
  g.flow = trainer::flow_options(m.recipe);
  int scale = static_cast<int>(args->get_int("scale", m.recipe.sample.scale));
  if (g.steps < 2) fail("--steps must be >= 2, got ", g.steps);
  if (scale < 1) fail("--scale must be >= 1, got ", scale);
  log_info("sampling ", prompts.size(), " prompt(s) from ", m.path, " (step ", m.step, ", ",
           m.ema ? "EMA" : "raw", " weights), ", g.steps, " steps, cfg ", g.cfg);
  const std::string out = args->get("out");
  const LaunchInfo launch = launch_info();
  if (launch.world_size == 1) {
    torch::Tensor clips = m.decoder->decode(trainer::generate(m.model, prompts, seeds, g), pixels.frames);
    trainer::write_samples(out, prompts, seeds, clips, static_cast<int>(g.fps), scale);
    log_info("wrote ", prompts.size(), " video(s), contact_sheet.png and samples.jsonl to ", out);
    return 0;
  }
  // Under mpirun each rank samples every world-th prompt (the same clip as one process would: a
  // clip's noise comes from its prompt's seed alone) and writes its videos; rank 0 gathers the
  // clips for the contact sheet and writes samples.jsonl.
  parallel::MpiRuntime mpi;
  parallel::Watchdog watchdog({600, 1.0});
  auto world = parallel::MpiCommunicator::world(watchdog);
  const std::vector<size_t> mine = trainer::rank_share(prompts.size(), world->rank(), world->size());
  std::vector<std::string> my_prompts;
  std::vector<uint64_t> my_seeds;
  for (size_t i : mine) {
    my_prompts.push_back(prompts[i]);
    my_seeds.push_back(seeds[i]);
  }
  torch::Tensor clips;
  if (!mine.empty()) {
    clips = m.decoder->decode(trainer::generate(m.model, my_prompts, my_seeds, g), pixels.frames);
    trainer::write_sample_videos(out, mine, clips, static_cast<int>(g.fps), scale);
  }
  // All ranks hold ceil(N / world) rows (zero-padded), gathered in rank order: row r * per + k is
  // prompt k * world + r.
  const int64_t per = static_cast<int64_t>((prompts.size() + world->size() - 1) / world->size());
  const std::vector<int64_t> shape = {per, pixels.frames, pixels.height, pixels.width, 3};
  torch::Tensor mine_rows = torch::zeros(shape, torch::kFloat32);
  if (!mine.empty()) mine_rows.narrow(0, 0, clips.size(0)).copy_(clips.to(torch::kFloat32));
  torch::Tensor all = torch::empty({per * world->size(), pixels.frames, pixels.height, pixels.width, 3}, torch::kFloat32);
  world->all_gather(all, mine_rows);
  if (world->rank() == 0) {
    torch::Tensor ordered = torch::empty({static_cast<int64_t>(prompts.size()), pixels.frames, pixels.height, pixels.width, 3},
                                         torch::kUInt8);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const int64_t r = static_cast<int64_t>(i) % world->size(), k = static_cast<int64_t>(i) / world->size();
      ordered[static_cast<int64_t>(i)].copy_(all[r * per + k].to(torch::kUInt8));
    }
    trainer::write_sample_index(out, prompts, seeds, ordered, scale);
    log_info("wrote ", prompts.size(), " video(s) from ", world->size(), " ranks, contact_sheet.png and samples.jsonl to ", out);
  }
  world->barrier();
  return 0;
}

}  // namespace reel::cli
