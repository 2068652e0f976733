// `reel data synth` (the synthetic dataset whose truth is known) and `reel data ingest` (real
// media files into bucketed shards).
#include <chrono>
#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "common/fs.h"
#include "common/runtime.h"
#include "data/ingest.h"
#include "data/synth.h"
#include "trainer/latent_encode.h"
#include "trainer/text_encode.h"
#include "trainer/recipe.h"
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

int cmd_ingest(int argc, char** argv, int first) {
  Command c("reel data ingest SRC... --out DIR [options]",
            "Turns video files (any container and codec FFmpeg decodes), images (PNG, JPEG, ...) and audio files\n"
            "(WAV, FLAC, ...) into bucketed HDF5 shards. Videos are resampled to the grid's frame rate, resized to\n"
            "cover the size of the nearest aspect ratio and centre-cropped, and cut into consecutive clips (each the\n"
            "longest bucket length that still fits); their audio is cut with them. Images become 1-frame samples,\n"
            "audio-only files audio clips. Captions come from a sidecar (--captions, or captions.jsonl / captions.csv\n"
            "in a source directory). Unreadable files are skipped and listed in DIR/ingest_report.json; an\n"
            "interrupted run resumes when started again with the same arguments.");
  c.positional("SRC", "media files or directories (walked recursively)")
      .min_positionals(1)
      .max_positionals(1 << 20)
      .option("out", "DIR", "output directory: DIR/train, DIR/val, DIR/ingest_report.json, DIR/dataset.json")
      .option("recipe", "FILE", "take the bucket grid from the recipe's data.buckets (default: the tiny grid,\n"
                                "8 fps, 16x16 / 16x24 / 24x16, 8-frame clips)")
      .option("captions", "FILE", "caption sidecar: .jsonl lines {\"path\": ..., \"caption\": ...} or .csv path,caption")
      .option("val-fraction", "F", "share of files written to DIR/val, chosen by a hash of the path (default 0)")
      .option("samples-per-shard", "N", "clips a worker gathers before it closes its shards (default 64)")
      .option("audio-rate", "HZ", "sample rate of the stored mono audio (default 16000)")
      .option("threads", "N", "worker threads (default: every core)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  if (!args->has("out")) fail("--out DIR is required");
  data::IngestOptions o;
  o.sources = args->positionals();
  o.out_dir = args->get("out");
  if (args->has("recipe")) {
    const std::string path = args->get("recipe");
    const trainer::Recipe r = trainer::parse_recipe_text(read_file(path), path, {}, false);
    const trainer::BucketsSection& b = r.data.buckets;
    o.grid.fps = int(b.fps);
    o.grid.sizes.clear();
    for (size_t i = 0; i < b.heights.size(); ++i) o.grid.sizes.emplace_back(int(b.heights[i]), int(b.widths[i]));
    o.grid.frames.assign(b.frames.begin(), b.frames.end());
  }
  o.captions = args->get("captions", "");
  o.val_fraction = args->get_double("val-fraction", 0);
  o.samples_per_shard = int(args->get_int("samples-per-shard", 64));
  o.audio_rate = int(args->get_int("audio-rate", 16000));
  o.threads = int(args->get_int("threads", 0));
  const data::IngestReport r = data::ingest_media(o);
  int64_t clips = 0, audio = 0;
  for (const auto& [bucket, n] : r.clips) clips += n;
  for (const auto& [samples, n] : r.audio_clips) audio += n;
  std::printf("ingest: %lld of %lld files -> %lld samples in %zu buckets, %lld audio clips -> %s (%.1fs%s)\n",
              static_cast<long long>(r.ingested), static_cast<long long>(r.files), static_cast<long long>(clips),
              r.clips.size(), static_cast<long long>(audio), o.out_dir.c_str(), r.seconds,
              r.resumed_files > 0 ? cat(", resumed after ", r.resumed_files, " files").c_str() : "");
  for (const auto& [bucket, n] : r.clips) std::printf("  %-12s %lld\n", bucket.c_str(), static_cast<long long>(n));
  if (r.uncaptioned > 0) std::printf("  %lld files had no caption (empty captions)\n", static_cast<long long>(r.uncaptioned));
  if (!r.skipped.empty()) {
    std::printf("skipped %zu files (listed in %s/ingest_report.json):\n", r.skipped.size(), o.out_dir.c_str());
    for (const auto& [file, reason] : r.skipped) std::printf("  %s: %s\n", file.c_str(), reason.c_str());
  }
  return 0;
}

int cmd_encode(int argc, char** argv, int first) {
  Command c("[mpirun -np N] reel data encode --tae CKPT --in DIR --out DIR2 [options]",
            "Encodes a pixel dataset with a trained TAE into latent shards (bf16), one per pixel shard, under\n"
            "DIR2/train and DIR2/val (or DIR2 when DIR has no splits), with DIR2/latents.json. Under mpirun each\n"
            "rank encodes every N-th shard; the latents are the same whatever the number of ranks. Complete\n"
            "latent shards are skipped, so rerunning an interrupted job finishes it.");
  c.option("tae", "CKPT", "TAE checkpoint: a file, a run directory, its checkpoints/ or its latest file")
      .option("in", "DIR", "pixel dataset (`reel data synth` or `reel data ingest` output)")
      .option("out", "DIR2", "output directory")
      .option("batch", "N", "clips per encoder call (default 8)")
      .option("tile-frames", "N", "encode clips longer than N frames in temporal tiles of N (default 0: whole)")
      .option("threads", "N", "intra-op threads per rank (default: the node's cores divided among its ranks)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  for (const char* required : {"tae", "in", "out"})
    if (!args->has(required)) fail("--", required, " is required; see `reel data encode --help`");
  trainer::EncodeOptions o;
  o.tae = args->get("tae");
  o.in_dir = args->get("in");
  o.out_dir = args->get("out");
  o.batch = int(args->get_int("batch", 8));
  o.tile_frames = args->get_int("tile-frames", 0);
  const LaunchInfo launch = launch_info();
  o.rank = launch.rank;
  o.world_size = launch.world_size;
  const int threads = configure_threads(int(args->get_int("threads", 0)));
  const trainer::EncodeReport r = trainer::encode_dataset(o);
  std::printf("encode rank %d/%d: %lld of %lld shards, %lld complete before, %lld clips encoded, %d threads (%.1fs)\n",
              o.rank, o.world_size, static_cast<long long>(r.mine), static_cast<long long>(r.shards),
              static_cast<long long>(r.already_done), static_cast<long long>(r.samples), threads, r.seconds);
  return 0;
}

int cmd_encode_text(int argc, char** argv, int first) {
  Command c("[mpirun -np N] reel data encode-text --model RECIPE|CKPT --in DIR --out DIR2 [key.path=value ...]",
            "Runs the frozen text encoders (text_encoders[i].trainable: false) of a text-to-video model once\n"
            "over every conditioning text of a dataset (\"FPS-<fps> <caption>\" of DIR/train and DIR/val, and\n"
            "\"\" for caption dropout) into a text cache in DIR2; a recipe with data.text_cache: DIR2 then\n"
            "reads those outputs instead of running the encoders. The weights are those a run of RECIPE starts\n"
            "with (seed, init_from; overrides apply) or a checkpoint's. The trainer refuses a cache built from\n"
            "other weights. Under mpirun each rank encodes every N-th chunk; the cache is the same whatever\n"
            "the number of ranks. Complete chunks are skipped, so rerunning an interrupted job finishes it.");
  c.positional("key.path=value", "recipe overrides (with a RECIPE)")
      .max_positionals(-1)
      .option("model", "RECIPE|CKPT", "a recipe (*.yaml) or a t2v checkpoint: a file, a run directory or its latest")
      .option("in", "DIR", "the dataset (pixel or latent shards)")
      .option("out", "DIR2", "the text cache directory (new, empty, or an interrupted run's)")
      .option("batch", "N", "strings per encoder call (default 64)")
      .option("chunk", "N", "strings per chunk file (default 1024)")
      .option("dtype", "T", "bfloat16 (default; half the bytes) or float32 (outputs exactly as computed)")
      .option("threads", "N", "intra-op threads per rank (default: the node's cores divided among its ranks)");
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  for (const char* required : {"model", "in", "out"})
    if (!args->has(required)) fail("--", required, " is required; see `reel data encode-text --help`");
  trainer::TextEncodeOptions o;
  o.model = args->get("model");
  o.overrides = args->positionals();
  o.in_dir = args->get("in");
  o.out_dir = args->get("out");
  o.batch = int(args->get_int("batch", 64));
  o.chunk = args->get_int("chunk", 1024);
  o.dtype = args->has("dtype") ? args->get("dtype") : "bfloat16";
  const LaunchInfo launch = launch_info();
  o.rank = launch.rank;
  o.world_size = launch.world_size;
  const int threads = configure_threads(int(args->get_int("threads", 0)));
  const trainer::TextEncodeReport r = trainer::encode_text_cache(o);
  std::printf("encode-text rank %d/%d: %lld of %lld chunks (%lld strings in all), %lld complete before, "
              "%lld strings encoded, %d threads (%.1fs)\n",
              o.rank, o.world_size, static_cast<long long>(r.mine), static_cast<long long>(r.chunks),
              static_cast<long long>(r.strings), static_cast<long long>(r.already_done),
              static_cast<long long>(r.encoded), threads, r.seconds);
  return 0;
}

}  // namespace

int cmd_data(int argc, char** argv, int first) {
  std::string sub = first < argc ? argv[first] : "";
  if (sub == "synth") return cmd_synth(argc, argv, first + 1);
  if (sub == "ingest") return cmd_ingest(argc, argv, first + 1);
  if (sub == "encode") return cmd_encode(argc, argv, first + 1);
  if (sub == "encode-text") return cmd_encode_text(argc, argv, first + 1);
  if (sub == "--help" || sub == "-h") {
    std::printf("usage: reel data <subcommand>\n\nsubcommands:\n"
                "  synth --out DIR            the synthetic video-text dataset\n"
                "  ingest SRC... --out DIR    real video, image and audio files into bucketed shards\n"
                "  encode --tae CKPT --in DIR --out DIR2   a pixel dataset into TAE latent shards (mpirun)\n"
                "  encode-text --model RECIPE|CKPT --in DIR --out DIR2   frozen text encoders' outputs into a\n"
                "                             text cache for data.text_cache (mpirun)\n");
    return 0;
  }
  fail("unknown `reel data` subcommand '", sub, "'; known: synth, ingest, encode, encode-text");
}

}  // namespace reel::cli
