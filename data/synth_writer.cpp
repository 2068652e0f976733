// Writes a whole synthetic dataset: train/val shards rendered on several threads, the
// evaluation prompts and the dataset.json manifest.
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/internal/random.h"
#include "data/shards.h"
#include "data/synth.h"

namespace reel::data {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSplits[] = {"train", "val"};
constexpr int kEvalPromptCount = 64;
constexpr uint64_t kEvalPromptSeed = 1234;

struct ShardTask {
  int split;
  Bucket bucket;
  int64_t begin, end;  // clip indices [begin, end) of this split and bucket
  std::string path;
};

void check_options(const SynthOptions& o) {
  if (o.out_dir.empty()) fail("synth: out_dir is empty; give the directory to write the dataset into");
  if (o.buckets.empty()) fail("synth: no buckets given; e.g. 8x16x16 (video) or 1x16x16 (images)");
  std::set<Bucket> seen;
  for (const Bucket& b : o.buckets) {
    if (b.frames < 1 || b.height < 8 || b.width < 8)
      fail("synth: bucket ", b.name(), " is too small; synthetic clips need at least 1 frame of 8x8 pixels");
    if (!seen.insert(b).second) fail("synth: bucket ", b.name(), " is listed twice");
  }
  if (o.train_per_bucket < 0) fail("synth: train_per_bucket = ", o.train_per_bucket, " must not be negative");
  if (o.val_per_bucket < 0) fail("synth: val_per_bucket = ", o.val_per_bucket, " must not be negative");
  if (o.samples_per_shard < 1) fail("synth: samples_per_shard = ", o.samples_per_shard, " must be at least 1");
  if (o.fps < 1) fail("synth: fps = ", o.fps, " must be at least 1");
  if (!(o.textured_fraction >= 0 && o.textured_fraction <= 1))
    fail("synth: textured_fraction = ", o.textured_fraction, " must lie in [0, 1]");
  if (o.threads < 0) fail("synth: threads = ", o.threads, " must be 0 (all cores) or positive");
}

std::vector<ShardTask> plan_shards(const SynthOptions& o) {
  std::vector<ShardTask> tasks;
  for (int split = 0; split < 2; ++split) {
    const int64_t count = split == 0 ? o.train_per_bucket : o.val_per_bucket;
    for (const Bucket& b : o.buckets) {
      for (int64_t begin = 0, k = 0; begin < count; begin += o.samples_per_shard, ++k) {
        char name[32];
        std::snprintf(name, sizeof(name), "_%05lld.h5", static_cast<long long>(k));
        std::string path = (fs::path(o.out_dir) / kSplits[split] / (b.name() + name)).string();
        tasks.push_back({split, b, begin, std::min<int64_t>(count, begin + o.samples_per_shard), path});
      }
    }
  }
  return tasks;
}

// Refuses to mix this run's shards with other .h5 files already in train/ or val/.
void check_no_stale_shards(const SynthOptions& o, const std::vector<ShardTask>& tasks) {
  std::set<std::string> planned;
  for (const ShardTask& t : tasks) planned.insert(fs::path(t.path).filename().string());
  for (const char* split : kSplits) {
    fs::path dir = fs::path(o.out_dir) / split;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (entry.path().extension() == ".h5" && !planned.count(name))
        fail("synth: '", entry.path().string(), "' is not part of this dataset but would be read with it; "
             "write into an empty directory or delete the old one");
    }
  }
}

// The clip at `index` of a split and bucket: a function of (seed, split, bucket, index) only.
Clip synth_clip(const SynthOptions& o, int split, const Bucket& b, int64_t index) {
  std::mt19937_64 rng(detail::mix({o.seed, uint64_t(split), uint64_t(b.frames), uint64_t(b.height),
                                   uint64_t(b.width), uint64_t(index)}));
  const int color = int(detail::below(rng, color_names().size()));
  const int shape = int(detail::below(rng, shape_names().size()));
  const int motion = b.frames == 1 ? int(kStill) : int(detail::below(rng, motion_names().size()));
  return render_clip(b, color, shape, motion, rng(), o.fps, o.textured_fraction);
}

void write_shard(const SynthOptions& o, const ShardTask& task) {
  ShardWriter writer(task.path, task.bucket);
  for (int64_t i = task.begin; i < task.end; ++i) writer.add(synth_clip(o, task.split, task.bucket, i));
  writer.close();
}

// Runs every task on `threads` threads; the first exception is re-thrown after all joined.
void run_tasks(const SynthOptions& o, const std::vector<ShardTask>& tasks, int threads) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  auto work = [&] {
    for (size_t i = next++; i < tasks.size() && !failed; i = next++) {
      try {
        write_shard(o, tasks[i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

std::string eval_prompts_jsonl() {
  std::string out;
  for (const EvalPrompt& p : eval_prompts(kEvalPromptCount, kEvalPromptSeed)) {
    nlohmann::json line = {{"prompt", p.prompt},
                           {"seed", p.seed},
                           {"color", color_names()[p.color]},
                           {"shape", shape_names()[p.shape]},
                           {"motion", motion_names()[p.motion]}};
    out += line.dump() + "\n";
  }
  return out;
}

nlohmann::json manifest(const SynthOptions& o, const SynthReport& report) {
  nlohmann::json buckets = nlohmann::json::array(), rgb = nlohmann::json::array();
  for (const Bucket& b : o.buckets) buckets.push_back(b.name());
  for (size_t c = 0; c < color_names().size(); ++c) {
    auto v = color_rgb(int(c));
    rgb.push_back({v[0], v[1], v[2]});
  }
  std::vector<int> levels;
  for (size_t b = 0; b < background_names().size(); ++b) levels.push_back(background_level(int(b)));
  return {{"format", "reel-synth-1"},
          {"seed", o.seed},
          {"fps", o.fps},
          {"buckets", buckets},
          {"train", {{"per_bucket", o.train_per_bucket}, {"samples", report.train_samples}}},
          {"val", {{"per_bucket", o.val_per_bucket}, {"samples", report.val_samples}}},
          {"shards", report.shards},
          {"samples_per_shard", o.samples_per_shard},
          {"textured_fraction", o.textured_fraction},
          {"colors", color_names()},
          {"color_rgb", rgb},
          {"shapes", shape_names()},
          {"motions", motion_names()},
          {"backgrounds", background_names()},
          {"background_levels", levels},
          {"eval_prompts", {{"file", "eval_prompts.jsonl"}, {"count", kEvalPromptCount}, {"seed", kEvalPromptSeed}}}};
}

}  // namespace

SynthReport write_synth_dataset(const SynthOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  check_options(options);
  const std::vector<ShardTask> tasks = plan_shards(options);
  check_no_stale_shards(options, tasks);
  for (const char* split : kSplits) make_dirs((fs::path(options.out_dir) / split).string());

  int threads = options.threads > 0 ? options.threads : int(std::thread::hardware_concurrency());
  threads = std::max(1, std::min<int>(threads, int(tasks.size())));
  run_tasks(options, tasks, threads);

  SynthReport report;
  report.train_samples = int64_t(options.train_per_bucket) * int64_t(options.buckets.size());
  report.val_samples = int64_t(options.val_per_bucket) * int64_t(options.buckets.size());
  report.shards = int(tasks.size());
  write_file_atomic((fs::path(options.out_dir) / "eval_prompts.jsonl").string(), eval_prompts_jsonl());
  write_file_atomic((fs::path(options.out_dir) / "dataset.json").string(), manifest(options, report).dump(2) + "\n");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log_info("synth: wrote ", report.train_samples, " train + ", report.val_samples, " val clips in ", report.shards,
           " shards to ", options.out_dir, " (", threads, " threads, ", seconds, " s)");
  return report;
}

}  // namespace reel::data
