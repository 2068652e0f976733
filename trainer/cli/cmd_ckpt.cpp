// `reel ckpt inspect FILE`.
#include <cstdio>

#include "common/error.h"
#include "trainer/checkpoint.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"

namespace reel::cli {
namespace {

int inspect(int argc, char** argv, int first) {
  Command c("reel ckpt inspect FILE [--recipe]",
            "Prints a checkpoint's step, version, metadata and every tensor with its shape, dtype and norm.");
  c.positional("FILE", "checkpoint file").flag("recipe", "also print the resolved recipe").min_positionals(1).max_positionals(1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  const std::string& path = args->positionals()[0];
  trainer::Checkpoint ckpt = trainer::load_checkpoint(path);
  trainer::CheckpointInfo info = trainer::inspect_checkpoint(path);
  std::printf("%s\n  step %lld, written by reel %s (%s)\n", path.c_str(), static_cast<long long>(ckpt.step),
              info.version.c_str(), info.commit.c_str());
  for (const auto& [key, value] : ckpt.meta) {
    if (key == "recipe") continue;
    std::printf("  meta %s: %s\n", key.c_str(), value.c_str());
  }
  int64_t total = 0;
  for (const auto& [name, t] : ckpt.tensors) {
    std::string shape;
    for (int64_t d : t.sizes()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    double norm = t.is_floating_point() ? t.to(torch::kFloat64).norm().item<double>() : 0.0;
    std::printf("  %-60s %-10s %-14s norm %.4g\n", name.c_str(), c10::toString(t.scalar_type()),
                shape.empty() ? "scalar" : shape.c_str(), norm);
    if (name.rfind("model/", 0) == 0) total += t.numel();
  }
  std::printf("  %zu tensors, %lld model parameters\n", ckpt.tensors.size(), static_cast<long long>(total));
  if (args->flag("recipe")) std::printf("\n%s\n", ckpt.meta["recipe"].c_str());
  return 0;
}

}  // namespace

int cmd_ckpt(int argc, char** argv, int first) {
  std::string sub = first < argc ? argv[first] : "";
  if (sub == "inspect") return inspect(argc, argv, first + 1);
  if (sub == "--help" || sub == "-h") {
    std::printf("usage: reel ckpt <subcommand>\n\nsubcommands:\n  inspect FILE    step, metadata, tensors\n");
    return 0;
  }
  fail("unknown `reel ckpt` subcommand '", sub, "'; known: inspect");
}

}  // namespace reel::cli
