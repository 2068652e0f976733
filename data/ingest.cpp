// `reel data ingest` (data/ingest.h): files -> samples -> per-worker shard writers -> commits
// recorded in a journal that a rerun resumes from.
#include "data/ingest.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/test_hooks.h"
#include "data/audio_shards.h"
#include "data/media.h"
#include "data/shards.h"

namespace reel::data {
namespace fs = std::filesystem;
using nlohmann::json;

// ---- the bucket grid ------------------------------------------------------------------------

void BucketGrid::check() const {
  if (fps < 1) fail("ingest: the bucket grid's fps = ", fps, " must be >= 1 (data.buckets.fps)");
  if (sizes.empty()) fail("ingest: the bucket grid has no sizes (data.buckets.heights / widths)");
  for (const auto& [h, w] : sizes)
    if (h < 1 || w < 1) fail("ingest: bucket size ", h, "x", w, " must be positive (data.buckets.heights / widths)");
  if (frames.empty()) fail("ingest: the bucket grid has no clip lengths (data.buckets.frames)");
  for (int f : frames)
    if (f < 2) fail("ingest: clip length ", f, " frames must be >= 2 (data.buckets.frames; images get 1-frame buckets)");
}

std::pair<int, int> BucketGrid::nearest_size(int width, int height) const {
  REEL_CHECK(width > 0 && height > 0 && !sizes.empty(), "nearest_size: bad input ", width, "x", height);
  const double ratio = std::log(double(width) / height);
  size_t best = 0;
  double best_gap = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const double gap = std::fabs(std::log(double(sizes[i].second) / sizes[i].first) - ratio);
    if (i == 0 || gap < best_gap - 1e-12) best = i, best_gap = gap;
  }
  return sizes[best];
}

std::vector<BucketGrid::Cut> BucketGrid::cuts(double seconds) const {
  std::vector<int> lengths = frames;
  std::sort(lengths.begin(), lengths.end(), std::greater<int>());
  std::vector<Cut> out;
  int64_t at = 0;  // frames at fps from the start
  const double eps = 1e-6;
  for (;;) {
    const double left = seconds - double(at) / fps;
    auto fits = std::find_if(lengths.begin(), lengths.end(), [&](int f) { return double(f) / fps <= left + eps; });
    if (fits == lengths.end()) return out;
    out.push_back({double(at) / fps, *fits});
    at += *fits;
  }
}

namespace {

// ---- captions -------------------------------------------------------------------------------

std::string path_key(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  return (ec ? p : abs).lexically_normal().string();
}

// Splits one CSV record (RFC 4180 quoting; no newlines inside fields).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else fields.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  return fields;
}

class Captions {
 public:
  void load(const std::string& file) {
    std::ifstream in(file);
    if (!in) fail("cannot read the caption sidecar '", file, "'");
    const fs::path dir = fs::path(file).parent_path();
    const bool jsonl = fs::path(file).extension() == ".jsonl";
    if (!jsonl && fs::path(file).extension() != ".csv")
      fail("caption sidecar '", file, "' must be .jsonl ({\"path\": ..., \"caption\": ...} per line) or .csv (path,caption)");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::string path, caption;
      if (jsonl) {
        try {
          const json j = json::parse(line);
          path = j.at("path").get<std::string>();
          caption = j.at("caption").get<std::string>();
        } catch (const std::exception& e) {
          fail(file, ":", n, ": expected {\"path\": \"...\", \"caption\": \"...\"}: ", e.what());
        }
      } else {
        const std::vector<std::string> f = csv_fields(line);
        if (f.size() < 2) fail(file, ":", n, ": expected two fields, path,caption; got '", line, "'");
        if (n == 1 && f[0] == "path") continue;  // a header
        path = f[0], caption = f[1];
        for (size_t k = 2; k < f.size(); ++k) caption += "," + f[k];  // an unquoted comma in the caption
      }
      by_path_[path_key(fs::path(path).is_absolute() ? fs::path(path) : dir / path)] = caption;
      if (fs::path(path).filename() == fs::path(path)) by_name_[path] = caption;
    }
  }
  // The caption of a media file, or nullptr.
  const std::string* find(const std::string& file) const {
    auto it = by_path_.find(path_key(file));
    if (it != by_path_.end()) return &it->second;
    auto byname = by_name_.find(fs::path(file).filename().string());
    return byname != by_name_.end() ? &byname->second : nullptr;
  }

 private:
  std::map<std::string, std::string> by_path_, by_name_;
};

bool is_sidecar(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "captions.jsonl" || name == "captions.csv";
}

std::vector<std::string> list_files(const IngestOptions& o, Captions& captions) {
  std::vector<std::string> files;
  for (const std::string& src : o.sources) {
    std::error_code ec;
    if (fs::is_directory(src, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(src, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && !is_sidecar(it->path())) found.push_back(it->path().string());
      }
      if (ec) fail("cannot list the source directory '", src, "': ", ec.message());
      if (o.captions.empty())
        for (const char* name : {"captions.jsonl", "captions.csv"})
          if (fs::is_regular_file(fs::path(src) / name)) captions.load((fs::path(src) / name).string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(src, ec)) {
      files.push_back(src);
    } else {
      fail("ingest: source '", src, "' does not exist; give media files or directories");
    }
  }
  std::set<std::string> seen;
  std::vector<std::string> unique;
  for (const std::string& f : files)
    if (seen.insert(path_key(f)).second) unique.push_back(f);
  return unique;
}

// FNV-1a of the path: which split a file goes to, stable across runs and thread counts.
bool in_val(const std::string& path, double fraction) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : path) h = (h ^ c) * 1099511628211ull;
  return double(h >> 11) / double(1ull << 53) < fraction;
}

int64_t audio_samples(int frames, int fps, int rate) { return std::llround(double(frames) * rate / fps); }

// int16 (S) cut from a whole track at [start, start + S), zero-padded past its end.
torch::Tensor audio_slice(const torch::Tensor& track, double start, int64_t samples, int rate) {
  torch::Tensor out = torch::zeros({samples}, torch::kInt16);
  const int64_t from = std::llround(start * rate), n = std::min<int64_t>(samples, track.size(0) - from);
  if (n > 0) out.narrow(0, 0, n).copy_(track.narrow(0, from, n));
  return out;
}

// ---- the journal ----------------------------------------------------------------------------

constexpr const char* kJournal = "ingest_journal.jsonl";

struct JournalState {
  std::set<std::string> done;     // files committed or skipped
  std::set<std::string> shards;   // committed shard files, relative to out_dir
  int64_t next_commit = 0;
  std::vector<json> entries;
};

// Reads the journal (dropping a torn last line) and removes every shard it does not name.
JournalState open_journal(const std::string& out_dir) {
  JournalState st;
  const fs::path journal = fs::path(out_dir) / kJournal;
  std::error_code ec;
  const bool ours = fs::exists(journal, ec);  // created before this directory's first shard
  if (ours) {
    const std::string text = read_file(journal.string());
    size_t pos = 0, good = 0;
    while (pos < text.size()) {
      const size_t end = text.find('\n', pos);
      if (end == std::string::npos) break;  // torn last line: the crash came mid-write
      json j;
      try {
        j = json::parse(text.substr(pos, end - pos));
      } catch (const std::exception& e) {
        fail("ingest journal '", journal.string(), "' is damaged (", e.what(), "); remove ", out_dir, " and ingest again");
      }
      if (j.contains("commit")) {
        st.next_commit = std::max<int64_t>(st.next_commit, j["commit"].get<int64_t>() + 1);
        for (const json& s : j["shards"]) st.shards.insert(s["file"].get<std::string>());
        for (const json& f : j["files"]) st.done.insert(f["path"].get<std::string>());
      } else {
        st.done.insert(j["skipped"].get<std::string>());
      }
      st.entries.push_back(std::move(j));
      pos = good = end + 1;
    }
    if (good < text.size()) fs::resize_file(journal, good, ec);
  }
  for (const char* split : {"train", "val", "train/audio", "val/audio"}) {
    const fs::path dir = fs::path(out_dir) / split;
    if (!fs::is_directory(dir, ec)) continue;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (!e.is_regular_file()) continue;
      const std::string name = e.path().filename().string();
      const std::string rel = (fs::path(split) / name).string();
      const bool leftover = name.find(".partial.") != std::string::npos || name.find(".tmp.") != std::string::npos;
      if (!leftover && (e.path().extension() != ".h5" || st.shards.count(rel))) continue;
      if (!leftover && !ours)
        fail("ingest: '", e.path().string(), "' exists but ", out_dir, " holds no ingest journal; choose an empty --out "
             "directory (or remove it): ingest does not mix its shards with others");
      fs::remove(e.path(), ec);  // an uncommitted shard of an interrupted run
    }
  }
  if (!ours) write_file_atomic(journal.string(), "");
  return st;
}

class Journal {
 public:
  explicit Journal(const std::string& out_dir) : path_((fs::path(out_dir) / kJournal).string()) {}
  void append(const json& entry) {
    const std::string line = entry.dump() + "\n";
    std::lock_guard<std::mutex> lock(mu_);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) fail("cannot open the ingest journal '", path_, "' for appending");
    const bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) fail("cannot write the ingest journal '", path_, "' (disk full?)");
    entries_.push_back(entry);
    if (entry.contains("commit")) test_kill_point("ingest", ++commits_);
  }
  std::vector<json> entries() {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_;
  }

 private:
  std::string path_;
  std::mutex mu_;
  std::vector<json> entries_;
  int64_t commits_ = 0;
};

// ---- one worker's shards between commits ----------------------------------------------------

class WorkerShards {
 public:
  WorkerShards(const IngestOptions& o, Journal& journal, std::atomic<int64_t>& next_commit)
      : o_(o), journal_(journal), next_commit_(next_commit) {}

  void add(const std::string& split, Clip clip) {
    const Bucket bucket{int(clip.pixels.size(0)), int(clip.pixels.size(1)), int(clip.pixels.size(2))};
    auto& w = video_[{split, bucket}];
    if (!w) {
      ShardLayout layout;
      layout.truth = false;
      layout.source = true;
      if (bucket.frames > 1) {
        layout.audio_rate = o_.audio_rate;
        layout.audio_samples = audio_samples(bucket.frames, o_.grid.fps, o_.audio_rate);
      }
      w = std::make_unique<ShardWriter>(shard_path(split, bucket.name()), bucket, layout);
    }
    w->add(clip);
    ++pending_;
  }
  void add_audio(const std::string& split, AudioClip clip) {
    const int64_t samples = clip.audio.size(0);
    auto& w = audio_[{split, samples}];
    if (!w) w = std::make_unique<AudioShardWriter>(shard_path(split + "/audio", std::to_string(samples)), o_.audio_rate, samples);
    w->add(std::move(clip));
    ++pending_;
  }
  void file_done(json entry) {
    files_.push_back(std::move(entry));
    if (pending_ >= o_.samples_per_shard) commit();
  }
  // Closes every open shard, then records them and the files they complete in the journal.
  void commit() {
    if (files_.empty() && video_.empty() && audio_.empty()) return;
    json shards = json::array();
    for (auto& [key, w] : video_) {
      shards.push_back({{"file", relative(key.first, key.second.name())}, {"bucket", key.second.name()},
                        {"clips", w->size()}});
      w->close();
    }
    for (auto& [key, w] : audio_) {
      shards.push_back({{"file", relative(key.first + "/audio", std::to_string(key.second))},
                        {"audio_samples", key.second}, {"clips", w->size()}});
      w->close();
    }
    journal_.append({{"commit", commit_}, {"shards", shards}, {"files", files_}});
    video_.clear(), audio_.clear(), files_.clear();
    pending_ = 0;
    commit_ = -1;
  }

 private:
  std::string relative(const std::string& dir, const std::string& name) const {
    char id[32];
    std::snprintf(id, sizeof(id), "_%05lld.h5", static_cast<long long>(commit_));
    return (fs::path(dir) / (name + id)).string();
  }
  std::string shard_path(const std::string& dir, const std::string& name) {
    if (commit_ < 0) commit_ = next_commit_++;
    return (fs::path(o_.out_dir) / relative(dir, name)).string();
  }

  const IngestOptions& o_;
  Journal& journal_;
  std::atomic<int64_t>& next_commit_;
  int64_t commit_ = -1;
  int64_t pending_ = 0;
  std::map<std::pair<std::string, Bucket>, std::unique_ptr<ShardWriter>> video_;
  std::map<std::pair<std::string, int64_t>, std::unique_ptr<AudioShardWriter>> audio_;
  std::vector<json> files_;
};

// ---- one file -> samples --------------------------------------------------------------------

// The size a (src_w x src_h) picture is scaled to so that it covers (W x H) keeping its aspect.
std::pair<int, int> cover_size(int src_w, int src_h, int W, int H) {
  const double s = std::max(double(W) / src_w, double(H) / src_h);
  return {std::max<int>(W, int(std::lround(src_w * s))), std::max<int>(H, int(std::lround(src_h * s)))};
}

torch::Tensor centre_crop(const torch::Tensor& rgb, int H, int W) {  // (h, w, 3) -> (H, W, 3)
  return rgb.narrow(0, (rgb.size(0) - H) / 2, H).narrow(1, (rgb.size(1) - W) / 2, W);
}

struct FileOutcome {
  std::string kind;         // "video" | "image" | "audio"
  int64_t clips = 0;
  std::string partial;      // why a file stopped early after giving clips
};

FileOutcome ingest_file(const std::string& path, const std::string& caption, const std::string& split,
                        const IngestOptions& o, WorkerShards& shards) {
  const MediaInfo info = probe_media(path);
  const BucketGrid& g = o.grid;
  FileOutcome out;
  if (info.has_video && info.is_image) {
    out.kind = "image";
    const auto [H, W] = g.nearest_size(info.width, info.height);
    const auto [cw, ch] = cover_size(info.width, info.height, W, H);
    Clip clip;
    decode_video_frames(path, cw, ch, [&](double, const torch::Tensor& rgb) {
      clip.pixels = centre_crop(rgb, H, W).unsqueeze(0).contiguous();
      return false;
    });
    clip.caption = caption;
    clip.fps = g.fps;
    clip.source = {path, 0, 0, info.width, info.height};
    shards.add(split, std::move(clip));
    out.clips = 1;
    return out;
  }
  if (info.has_video) {
    out.kind = "video";
    if (info.video_seconds <= 0) fail("'", path, "': the container does not say how long the video is");
    const std::vector<BucketGrid::Cut> cuts = g.cuts(info.video_seconds);
    if (cuts.empty())
      fail("'", path, "' is ", info.video_seconds, " s long, shorter than the shortest bucket (",
           double(*std::min_element(g.frames.begin(), g.frames.end())) / g.fps, " s)");
    torch::Tensor track;
    if (info.has_audio) {
      try {
        track = decode_audio(path, o.audio_rate);
      } catch (const UserError&) {
        track = torch::Tensor();  // the clips go in without audio (has_audio 0)
      }
    }
    const auto [H, W] = g.nearest_size(info.width, info.height);
    const auto [cw, ch] = cover_size(info.width, info.height, W, H);
    size_t c = 0;      // the clip being filled
    int64_t k = 0;     // its next frame
    torch::Tensor buf, prev;
    auto emit = [&](const torch::Tensor& frame) {
      if (!buf.defined()) buf = torch::empty({cuts[c].frames, H, W, 3}, torch::kUInt8);
      buf[k].copy_(centre_crop(frame, H, W));
      if (++k < cuts[c].frames) return;
      Clip clip;
      clip.pixels = buf;
      clip.caption = caption;
      clip.fps = g.fps;
      clip.source = {path, cuts[c].start, info.fps, info.width, info.height};
      if (track.defined())
        clip.audio = audio_slice(track, cuts[c].start, audio_samples(cuts[c].frames, g.fps, o.audio_rate), o.audio_rate);
      shards.add(split, std::move(clip));
      ++out.clips;
      buf = torch::Tensor(), k = 0, ++c;
    };
    auto target = [&] { return cuts[c].start + double(k) / g.fps; };
    try {
      decode_video_frames(path, cw, ch, [&](double t, const torch::Tensor& rgb) {
        // Every target time before this frame shows the previous frame (sample and hold).
        while (c < cuts.size() && target() < t - 1e-3) emit(prev.defined() ? prev : rgb);
        prev = rgb;
        return c < cuts.size();
      });
      while (c < cuts.size() && prev.defined() && target() < info.video_seconds - 1e-3) emit(prev);
      if (c < cuts.size())
        out.partial = cat("the stream ended at ", target(), " s, before the ", info.video_seconds,
                          " s the container announced; the clip from ", cuts[c].start, " s was dropped");
    } catch (const UserError& e) {
      if (out.clips == 0) throw;
      out.partial = e.what();
    }
    if (out.clips == 0) fail("'", path, "': no complete clip could be decoded");
    return out;
  }
  out.kind = "audio";
  const torch::Tensor track = decode_audio(path, o.audio_rate);
  const std::vector<BucketGrid::Cut> cuts = g.cuts(double(track.size(0)) / o.audio_rate);
  if (cuts.empty())
    fail("'", path, "' holds ", double(track.size(0)) / o.audio_rate, " s of audio, shorter than the shortest bucket (",
         double(*std::min_element(g.frames.begin(), g.frames.end())) / g.fps, " s)");
  for (const BucketGrid::Cut& cut : cuts) {
    const int64_t S = audio_samples(cut.frames, g.fps, o.audio_rate);
    shards.add_audio(split, {audio_slice(track, cut.start, S, o.audio_rate), caption, path, cut.start});
    ++out.clips;
  }
  return out;
}

void check_options(const IngestOptions& o) {
  if (o.sources.empty()) fail("ingest: no sources given; name media files or directories");
  if (o.out_dir.empty()) fail("ingest: --out is empty; give the directory to write the dataset into");
  o.grid.check();
  if (o.threads < 0) fail("ingest: threads = ", o.threads, " must be 0 (every core) or positive");
  if (!(o.val_fraction >= 0 && o.val_fraction <= 1)) fail("ingest: val_fraction = ", o.val_fraction, " must lie in [0, 1]");
  if (o.samples_per_shard < 1) fail("ingest: samples_per_shard = ", o.samples_per_shard, " must be >= 1");
  if (o.audio_rate < 1) fail("ingest: audio_rate = ", o.audio_rate, " must be >= 1 Hz");
}

IngestReport summarize(const std::vector<json>& entries) {
  IngestReport r;
  for (const json& e : entries) {
    if (e.contains("skipped")) {
      r.skipped.emplace_back(e["skipped"].get<std::string>(), e["reason"].get<std::string>());
      continue;
    }
    for (const json& s : e["shards"]) {
      if (s.contains("bucket")) r.clips[s["bucket"].get<std::string>()] += s["clips"].get<int64_t>();
      else r.audio_clips[std::to_string(s["audio_samples"].get<int64_t>())] += s["clips"].get<int64_t>();
    }
    for (const json& f : e["files"]) {
      ++r.ingested;
      const std::string kind = f["kind"].get<std::string>();
      (kind == "image" ? r.images : kind == "video" ? r.videos : r.audio_files) += 1;
      if (!f["captioned"].get<bool>()) ++r.uncaptioned;
    }
  }
  std::sort(r.skipped.begin(), r.skipped.end());
  return r;
}

}  // namespace

IngestReport ingest_media(const IngestOptions& o) {
  check_options(o);
  const auto t0 = std::chrono::steady_clock::now();
  Captions captions;
  if (!o.captions.empty()) captions.load(o.captions);
  const std::vector<std::string> files = list_files(o, captions);
  make_dirs(o.out_dir);
  JournalState state = open_journal(o.out_dir);
  Journal journal(o.out_dir);
  std::vector<std::string> pending;  // files no earlier run finished
  for (const std::string& f : files)
    if (!state.done.count(f)) pending.push_back(f);
  const int64_t resumed = int64_t(files.size() - pending.size());
  if (resumed > 0) log_info("ingest: resuming, ", resumed, " of ", files.size(), " files done before");

  const int threads = std::max(1, std::min<int>(o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency()),
                                                int(std::max<size_t>(pending.size(), 1))));
  std::atomic<int64_t> next_file{0}, next_commit{state.next_commit};
  std::atomic<bool> stop{false};
  std::mutex error_mu;
  std::exception_ptr error;
  auto work = [&] {
    try {
      WorkerShards shards(o, journal, next_commit);
      for (int64_t i; !stop && (i = next_file++) < int64_t(pending.size());) {
        const std::string& path = pending[size_t(i)];
        const std::string* caption = captions.find(path);
        const std::string split = in_val(path, o.val_fraction) ? "val" : "train";
        try {
          const FileOutcome r = ingest_file(path, caption ? *caption : std::string(), split, o, shards);
          json entry = {{"path", path}, {"kind", r.kind}, {"clips", r.clips}, {"split", split},
                        {"captioned", caption != nullptr}};
          if (!r.partial.empty()) entry["partial"] = r.partial;
          shards.file_done(std::move(entry));
        } catch (const UserError& e) {
          journal.append({{"skipped", path}, {"reason", e.what()}});
        }
      }
      shards.commit();
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);

  std::vector<json> all = state.entries;
  for (json& e : journal.entries()) all.push_back(std::move(e));
  IngestReport report = summarize(all);
  report.files = int64_t(files.size());
  report.resumed_files = resumed;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  json skipped = json::array(), partial = json::array();
  for (const auto& [file, reason] : report.skipped) skipped.push_back({{"file", file}, {"reason", reason}});
  for (const json& e : all)
    if (e.contains("files"))
      for (const json& f : e["files"])
        if (f.contains("partial")) partial.push_back({{"file", f["path"]}, {"reason", f["partial"]}});
  json splits = json::object();
  for (const json& e : all)
    if (e.contains("shards"))
      for (const json& s : e["shards"]) {
        const std::string file = s["file"].get<std::string>();
        const std::string split = file.substr(0, file.find('/'));
        const std::string key = s.contains("bucket") ? s["bucket"].get<std::string>()
                                                     : "audio_" + std::to_string(s["audio_samples"].get<int64_t>());
        json& count = splits[split][key];
        count = (count.is_null() ? int64_t(0) : count.get<int64_t>()) + s["clips"].get<int64_t>();
      }
  const json report_json = {{"files", report.files},           {"ingested", report.ingested},
                            {"videos", report.videos},         {"images", report.images},
                            {"audio_files", report.audio_files}, {"uncaptioned", report.uncaptioned},
                            {"skipped_count", report.skipped.size()}, {"skipped", skipped},
                            {"partial", partial},              {"clips", report.clips},
                            {"audio_clips", report.audio_clips}, {"resumed_files", resumed},
                            {"threads", threads},              {"seconds", report.seconds}};
  write_file_atomic((fs::path(o.out_dir) / "ingest_report.json").string(), report_json.dump(2) + "\n");
  json sizes = json::array();
  for (const auto& [h, w] : o.grid.sizes) sizes.push_back({h, w});
  const json manifest = {{"source", "reel data ingest"}, {"fps", o.grid.fps}, {"sizes", sizes},
                         {"frames", o.grid.frames},      {"audio_rate", o.audio_rate}, {"splits", splits},
                         {"report", "ingest_report.json"}};
  write_file_atomic((fs::path(o.out_dir) / "dataset.json").string(), manifest.dump(2) + "\n");
  return report;
}

}  // namespace reel::data
