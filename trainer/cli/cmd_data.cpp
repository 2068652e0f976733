// `reel data synth`: the synthetic dataset whose truth is known.
#include <chrono>
#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "data/synth.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"

namespace reel::cli {
namespace {

std::vector<data::Bucket> parse_buckets(const std::string& text) {
  std::vector<data::Bucket> buckets;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) buckets.push_back(data::Bucket::parse(item));
  if (buckets.empty()) fail("--buckets needs at least one FxHxW");
  return buckets;
}

int cmd_synth(int argc, char** argv, int first) {
  Command c("reel data synth --out DIR [options]",
            "Renders clips of coloured shapes (7 colours, 3 shapes) moving left/right/up/down or staying still on\n"
            "plain or lightly textured neutral backgrounds, with varied natural captions and the truth (colour,\n"
            "shape, motion, per-frame position) stored beside each sample. Writes HDF5 shards grouped by bucket:\n"
            "DIR/train/*.h5, DIR/val/*.h5, DIR/eval_prompts.jsonl and DIR/dataset.json. 1-frame buckets are images.");
  c.option("out", "DIR", "output directory")
      .option("buckets", "LIST", "comma-separated FxHxW buckets (default 8x16x16,8x16x24,1x16x16)")
      .option("train-per-bucket", "N", "training clips per bucket (default 2048)")
      .option("val-per-bucket", "N", "held-out clips per bucket (default 64)")
      .option("samples-per-shard", "N", "clips per shard file (default 1024)")
      .option("fps", "N", "frame rate (default 8)")
      .option("seed", "N", "seed (default 0)")
      .option("textured", "P", "fraction of textured backgrounds (default 0.3)")
      .option("threads", "N", "render threads (default: every core)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  if (!args->has("out")) fail("--out DIR is required");
  data::SynthOptions o;
  o.out_dir = args->get("out");
  o.buckets = parse_buckets(args->get("buckets", "8x16x16,8x16x24,1x16x16"));
  o.train_per_bucket = static_cast<int>(args->get_int("train-per-bucket", 2048));
  o.val_per_bucket = static_cast<int>(args->get_int("val-per-bucket", 64));
  o.samples_per_shard = static_cast<int>(args->get_int("samples-per-shard", 1024));
  o.fps = static_cast<int>(args->get_int("fps", 8));
  o.seed = static_cast<uint64_t>(args->get_int("seed", 0));
  o.textured_fraction = args->get_double("textured", 0.3);
  o.threads = static_cast<int>(args->get_int("threads", 0));
  if (o.train_per_bucket < 1 || o.val_per_bucket < 1 || o.samples_per_shard < 1) {
    fail("--train-per-bucket, --val-per-bucket and --samples-per-shard must be >= 1");
  }
  if (o.fps < 1) fail("--fps must be >= 1, got ", o.fps);
  if (o.textured_fraction < 0 || o.textured_fraction > 1) fail("--textured must be in [0, 1], got ", o.textured_fraction);
  auto t0 = std::chrono::steady_clock::now();
  data::SynthReport r = data::write_synth_dataset(o);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("synth: %lld train + %lld val clips in %d shards -> %s (%.1fs)\n",
              static_cast<long long>(r.train_samples), static_cast<long long>(r.val_samples), r.shards,
              o.out_dir.c_str(), s);
  return 0;
}

}  // namespace

int cmd_data(int argc, char** argv, int first) {
  std::string sub = first < argc ? argv[first] : "";
  if (sub == "synth") return cmd_synth(argc, argv, first + 1);
  if (sub == "--help" || sub == "-h") {
    std::printf("usage: reel data <subcommand>\n\nsubcommands:\n  synth --out DIR    the synthetic video-text dataset\n");
    return 0;
  }
  fail("unknown `reel data` subcommand '", sub, "'; known: synth");
}

}  // namespace reel::cli
