// `reel data encode` (trainer/latent_encode.h).
#include "trainer/latent_encode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/latent_shards.h"
#include "data/shards.h"
#include "trainer/checkpoint.h"
#include "trainer/tae_trainer.h"

namespace reel::trainer {
namespace fs = std::filesystem;

namespace {

struct Job {
  std::string split;  // "train", "val" or "" (no splits)
  fs::path in, out;
};

std::vector<Job> list_jobs(const EncodeOptions& o) {
  std::error_code ec;
  if (!fs::is_directory(o.in_dir, ec)) fail("encode: --in '", o.in_dir, "' is not a directory; give a dataset from `reel data synth` or `reel data ingest`");
  std::vector<std::string> splits;
  for (const char* s : {"train", "val"})
    if (fs::is_directory(fs::path(o.in_dir) / s, ec)) splits.push_back(s);
  if (splits.empty()) splits.push_back("");
  std::vector<Job> jobs;
  for (const std::string& split : splits) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(fs::path(o.in_dir) / split, ec))
      if (e.is_regular_file() && e.path().extension() == ".h5") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) jobs.push_back({split, f, fs::path(o.out_dir) / split / f.filename()});
  }
  if (jobs.empty()) fail("encode: no *.h5 shards in '", o.in_dir, "' (nor in its train/ and val/)");
  return jobs;
}

// True when `out` is a complete latent shard of all of `in`'s samples.
bool done(const fs::path& out, const data::ShardReader& in) {
  std::error_code ec;
  if (!fs::is_regular_file(out, ec)) return false;
  try {
    data::LatentShardReader r(out.string());
    return r.size() == in.size() && r.info().source == in.path();
  } catch (const UserError&) {
    return false;  // damaged or foreign: encode again
  }
}

void remove_partials(const fs::path& out) {
  std::error_code ec;
  if (!fs::is_directory(out.parent_path(), ec)) return;
  const std::string prefix = out.filename().string() + ".partial.";
  for (const auto& e : fs::directory_iterator(out.parent_path(), ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove(e.path(), ec);
}

}  // namespace

EncodeReport encode_dataset(const EncodeOptions& o) {
  if (o.batch < 1) fail("encode: --batch ", o.batch, " must be >= 1");
  if (o.tile_frames < 0) fail("encode: --tile-frames ", o.tile_frames, " must be >= 0 (0 = whole clips)");
  REEL_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "bad rank ", o.rank, " of ", o.world_size);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Job> jobs = list_jobs(o);
  // Absolute: a model trained on these latents finds its decoder through it (latents.json).
  const std::string ckpt = fs::absolute(resolve_checkpoint_argument(o.tae)).lexically_normal().string();
  model::TaeModel tae = load_tae(ckpt);
  const model::TaeOptions& to = tae->options();
  if (o.tile_frames > 0 && o.tile_frames % to.compression[0] != 0)
    fail("encode: --tile-frames ", o.tile_frames, " must be a multiple of the TAE's temporal compression ",
         to.compression[0]);
  torch::NoGradGuard no_grad;
  if (o.rank == 0) {
    make_dirs(o.out_dir);
    const nlohmann::json manifest = {{"format", "reel-latents-1"}, {"tae", ckpt}, {"source", o.in_dir},
                                     {"latent_channels", to.latent_channels}, {"compression", to.compression},
                                     {"dtype", "bfloat16"}, {"statistic", "posterior mean"}};
    write_file_atomic((fs::path(o.out_dir) / "latents.json").string(), manifest.dump(2) + "\n");
  }
  EncodeReport report;
  report.shards = int64_t(jobs.size());
  for (size_t j = size_t(o.rank); j < jobs.size(); j += size_t(o.world_size)) {
    const Job& job = jobs[j];
    ++report.mine;
    const data::ShardReader in(job.in.string());
    if (done(job.out, in)) {
      ++report.already_done;
      continue;
    }
    remove_partials(job.out);
    const data::Bucket& b = in.bucket();
    const auto [T, H, W] = tae->latent_shape(b.frames, b.height, b.width);
    data::LatentShardWriter out(job.out.string(), {b, {to.latent_channels, T, H, W}, in.path(), ckpt});
    for (int64_t first = 0; first < in.size(); first += o.batch) {
      const int64_t n = std::min<int64_t>(o.batch, in.size() - first);
      std::vector<torch::Tensor> clips;
      std::vector<std::string> captions;
      std::vector<int> fps;
      for (int64_t i = first; i < first + n; ++i) {
        clips.push_back(in.read_pixels(i));
        captions.push_back(in.caption(i));
        fps.push_back(in.fps(i));
      }
      const torch::Tensor x = to_pixels(clips);
      const torch::Tensor mean =
          (o.tile_frames > 0 && b.frames > o.tile_frames) ? tae->encode_tiled(x, o.tile_frames).first : tae->encode(x).first;
      out.add(mean, captions, fps);
      report.samples += n;
    }
    out.close();
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace reel::trainer
