// `reel ckpt inspect FILE`, `compare A B`, `verify FILE...` and `average A B ... -o OUT`.
#include <algorithm>
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
  c.positional("FILE", "checkpoint file, run dir or `latest`")
      .flag("recipe", "also print the resolved recipe")
      .min_positionals(1)
      .max_positionals(1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  const std::string path = trainer::resolve_checkpoint_argument(args->positionals()[0]);
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

// Exit 0 when every tensor under the prefix matches, 1 when one differs beyond the tolerance
// (the mesh-equivalence tests use it), 2 for unreadable files or differing tensor sets.
int compare(int argc, char** argv, int first) {
  Command c("reel ckpt compare A B [--prefix P] [--rtol X]",
            "Compares the tensors of two checkpoints: for each, ||a - b|| / ||a|| (2-norms). Exits 0 when all are\n"
            "within --rtol, 1 when one is not, 2 when the tensor names or shapes differ.");
  c.positional("A", "checkpoint file, run dir or `latest`").positional("B", "checkpoint file, run dir or `latest`")
      .option("prefix", "P", "only tensors whose name starts with P (default model/)")
      .option("rtol", "X", "tolerance (default 1e-5)")
      .min_positionals(2)
      .max_positionals(2);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  const std::string prefix = args->get("prefix", "model/");
  const double rtol = args->get_double("rtol", 1e-5);
  trainer::Checkpoint a = trainer::load_checkpoint(trainer::resolve_checkpoint_argument(args->positionals()[0]));
  trainer::Checkpoint b = trainer::load_checkpoint(trainer::resolve_checkpoint_argument(args->positionals()[1]));
  double worst = 0;
  std::string worst_name;
  int64_t compared = 0;
  for (const auto& [name, ta] : a.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto it = b.tensors.find(name);
    if (it == b.tensors.end()) fail(args->positionals()[1], " has no tensor '", name, "'");
    if (it->second.sizes() != ta.sizes())
      fail("tensor '", name, "' is ", ta.sizes(), " in A but ", it->second.sizes(), " in B");
    auto x = ta.to(torch::kFloat64), y = it->second.to(torch::kFloat64);
    const double rel = (x - y).norm().item<double>() / std::max(x.norm().item<double>(), 1e-30);
    if (rel > rtol) std::printf("  %-60s ||a - b|| / ||a|| = %.3g\n", name.c_str(), rel);
    if (rel >= worst) worst = rel, worst_name = name;
    ++compared;
  }
  for (const auto& [name, tb] : b.tensors)
    if (name.rfind(prefix, 0) == 0 && !a.tensors.count(name)) fail(args->positionals()[0], " has no tensor '", name, "'");
  if (compared == 0) fail("no tensor name starts with '", prefix, "' in ", args->positionals()[0]);
  std::printf("compared %lld tensors under '%s': largest ||a - b|| / ||a|| %.3g (%s), tolerance %.3g\n",
              static_cast<long long>(compared), prefix.c_str(), worst, worst_name.c_str(), rtol);
  return worst <= rtol ? 0 : 1;
}

// Exit 0 when every tensor and meta string reads back with its checksum, 1 when one does not.
int verify(int argc, char** argv, int first) {
  Command c("reel ckpt verify FILE...",
            "Reads every tensor and metadata string of each checkpoint and checks its CRC-64. Exits 0 when all\n"
            "match, 1 when a file is truncated, corrupt or has a checksum mismatch (named).");
  c.positional("FILE", "checkpoint files").min_positionals(1).max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  int bad = 0;
  for (const std::string& path : args->positionals()) {
    try {
      trainer::Checkpoint ckpt = trainer::load_checkpoint(path);
      std::printf("%s: OK, step %lld, %zu tensors and %zu metadata strings, every checksum matches\n", path.c_str(),
                  static_cast<long long>(ckpt.step), ckpt.tensors.size(), ckpt.meta.size());
    } catch (const UserError& e) {
      std::printf("%s: FAILED: %s\n", path.c_str(), e.what());
      ++bad;
    }
  }
  return bad == 0 ? 0 : 1;
}

int average(int argc, char** argv, int first) {
  Command c("reel ckpt average A B [C ...] -o OUT",
            "Writes the mean of the checkpoints' model (and EMA) weights to OUT, as Movie Gen averages its\n"
            "fine-tuned checkpoints; `reel sample --ckpt OUT` and `init_from` read it. Optimizer state is not kept.");
  c.positional("A B ...", "checkpoint files (or run directories: their latest) of the same model")
      .option("o", "OUT", "the checkpoint file to write (atomically)")
      .min_positionals(2)
      .max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  const std::string out = args->get("o", "");
  if (out.empty()) fail("reel ckpt average: give the output file with -o OUT");
  std::vector<trainer::Checkpoint> inputs;
  for (const std::string& p : args->positionals()) {
    inputs.push_back(trainer::load_checkpoint(trainer::resolve_checkpoint_argument(p)));
  }
  trainer::save_checkpoint(out, trainer::average_checkpoints(inputs));
  std::printf("wrote %s: the mean of %zu checkpoints\n", out.c_str(), inputs.size());
  return 0;
}

}  // namespace

int cmd_ckpt(int argc, char** argv, int first) {
  std::string sub = first < argc ? argv[first] : "";
  if (sub == "inspect") return inspect(argc, argv, first + 1);
  if (sub == "compare") return compare(argc, argv, first + 1);
  if (sub == "verify") return verify(argc, argv, first + 1);
  if (sub == "average") return average(argc, argv, first + 1);
  if (sub == "--help" || sub == "-h") {
    std::printf(
        "usage: reel ckpt <subcommand>\n\nsubcommands:\n"
        "  inspect FILE            step, metadata, tensors\n"
        "  compare A B             largest relative difference per tensor\n"
        "  verify FILE...          every checksum checked\n"
        "  average A B ... -o OUT  the mean of the model weights\n");
    return 0;
  }
  fail("unknown `reel ckpt` subcommand '", sub, "'; known: inspect, compare, verify, average");
}

}  // namespace reel::cli
