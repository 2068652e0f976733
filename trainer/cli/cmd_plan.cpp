// `reel plan RECIPE [--gpus N] [--gpu h100|h200] [--json]`: what a recipe costs on a cluster (trainer/plan.h).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/plan.h"
#include "trainer/recipe.h"

namespace reel::cli {

int cmd_plan(int argc, char** argv, int first) {
  Command c("reel plan RECIPE [key.path=value ...] [--gpus N] [--gpu h100|h200] [--json]",
            "Sizes a text-to-video recipe before launch, from the recipe alone (no data or weights needed):\n"
            "parameters per component, tokens per sample, FLOPs per sample and step, memory per GPU (state,\n"
            "frozen encoders, FSDP copies, activations with and without checkpointing, buffers), bytes each\n"
            "GPU sends per step per group, and a predicted step time and MFU from the GPU's peak rate and\n"
            "link bandwidths (trainer/plan.h states the model). Warns when the plan does not fit.");
  c.positional("RECIPE", "recipe file")
      .positional("key.path=value", "overrides")
      .option("gpus", "N", "GPUs (ranks) to plan for; parallel.dp_shard -1 takes what the other factors leave\n"
                           "(default: the recipe's mesh, dp_shard -1 counted as 1)")
      .option("gpu", "KIND", "h100 or h200 (default: plan.gpu)")
      .flag("json", "print one JSON object (params_total, tokens_per_sample, flops_per_step,\n"
                    "memory_per_gpu_bytes, predicted_step_s, predicted_mfu, ...)")
      .min_positionals(1)
      .max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  const std::string path = args->positionals()[0];
  std::vector<std::string> overrides(args->positionals().begin() + 1, args->positionals().end());
  std::ifstream in(path);
  if (!in) fail("cannot read recipe '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  // Planning needs no dataset: data.dir and init_from are not required to exist.
  const trainer::Recipe recipe = trainer::parse_recipe_text(text.str(), path, overrides, /*check_paths=*/false);
  const int64_t gpus = args->get_int("gpus", 0);
  if (gpus < 0) fail("--gpus must be >= 1, got ", gpus);
  const trainer::Plan plan = trainer::make_plan(recipe, static_cast<int>(gpus), args->get("gpu", ""));
  const std::string out = args->flag("json") ? trainer::plan_json(plan) : trainer::plan_text(plan);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace reel::cli
