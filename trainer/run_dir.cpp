// Run-directory bookkeeping: step_<N>.h5 names, the `latest` pointer, fallback, pruning (see trainer/checkpoint.h).
#include "trainer/checkpoint.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/runtime.h"
#include "trainer/internal/checkpoint_util.h"

namespace reel::trainer {
namespace fs = std::filesystem;
using detail::shape_str;
using detail::starts_with;

// ---------------------------------------------------------------------------------------------
// Run directory.
namespace {

constexpr const char* kLatest = "latest";

std::string checkpoints_dir(const std::string& run_dir) { return (fs::path(run_dir) / "checkpoints").string(); }

std::string checkpoint_file_name(int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "step_%08lld.h5", static_cast<long long>(step));
  return buf;
}

// The step of "step_<digits>.h5", or nullopt for any other name (temporaries included).
std::optional<int64_t> step_of(const std::string& file_name) {
  const std::string head = "step_", tail = ".h5";
  if (file_name.size() <= head.size() + tail.size() || !starts_with(file_name, head) ||
      file_name.compare(file_name.size() - tail.size(), tail.size(), tail) != 0) {
    return std::nullopt;
  }
  std::string digits = file_name.substr(head.size(), file_name.size() - head.size() - tail.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(digits);
}

// step_*.h5 files of the run, newest first.
std::vector<std::string> checkpoint_files(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::optional<int64_t> step = step_of(name);
    if (step && it->is_regular_file(ec)) found.emplace_back(*step, it->path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a > b; });
  std::vector<std::string> paths;
  for (auto& f : found) paths.push_back(std::move(f.second));
  return paths;
}

// The file name `latest` holds, or "" with `problem` set when it is missing, unreadable or empty.
std::string read_latest(const std::string& dir, std::string* problem) {
  const std::string latest = (fs::path(dir) / kLatest).string();
  std::error_code ec;
  if (!fs::exists(latest, ec)) {
    *problem = cat("'", latest, "' does not exist");
    return "";
  }
  std::string name;
  try {
    name = read_file(latest);
  } catch (const UserError& e) {
    *problem = e.what();
    return "";
  }
  name.erase(name.find_last_not_of(" \t\r\n") + 1);
  name.erase(0, name.find_first_not_of(" \t\r\n"));
  if (name.empty() || name.find('/') != std::string::npos) {
    *problem = cat("'", latest, "' does not hold a checkpoint file name");
    return "";
  }
  return name;
}

// "" when inspect_checkpoint accepts `path`, else why not.
std::string inspect_problem(const std::string& path, bool verify_data = false) {
  try {
    if (verify_data) {
      load_checkpoint(path);
    } else {
      inspect_checkpoint(path);
    }
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  REEL_CHECK(step >= 0, "checkpoint step must be >= 0, got ", step);
  return (fs::path(checkpoints_dir(run_dir)) / checkpoint_file_name(step)).string();
}

void mark_latest(const std::string& run_dir, const std::string& checkpoint_file) {
  const fs::path given(checkpoint_file);
  const std::string name = given.filename().string();
  const fs::path dir(checkpoints_dir(run_dir));
  std::error_code ec;
  if (name.empty() || !fs::is_regular_file(dir / name, ec)) {
    fail("cannot mark '", checkpoint_file, "' as the latest checkpoint: '", (dir / name).string(),
         "' is not a file; save the checkpoint before marking it");
  }
  if (given.has_parent_path() && !fs::equivalent(given.parent_path(), dir, ec)) {
    fail("cannot mark '", checkpoint_file, "' as the latest checkpoint: it is not in '", dir.string(), "'");
  }
  write_file_atomic((dir / kLatest).string(), name + "\n");
}

std::string resolve_checkpoint_argument(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "dir/" -> "dir"
  // Find the checkpoints directory; its parent is the run directory resolve_latest wants.
  if (p.filename() == "latest") {
    p = p.parent_path();
  } else if (!fs::is_directory(p, ec)) {
    return path;  // a checkpoint file
  } else if (p.filename() != "checkpoints" && !fs::exists(p / "latest", ec)) {
    p /= "checkpoints";  // a run directory
  }
  if (p.empty()) p = fs::current_path();  // "latest" given from inside the checkpoints dir
  const fs::path run = p.parent_path();
  return resolve_latest(run.empty() ? std::string(".") : run.string());
}

std::string resolve_latest(const std::string& run_dir, bool verify_data) {
  const std::string dir = checkpoints_dir(run_dir);
  const std::vector<std::string> files = checkpoint_files(dir);
  std::vector<std::string> skipped;  // for the final error

  std::string problem;
  std::string tried;
  std::string name = read_latest(dir, &problem);
  if (!name.empty()) {
    tried = (fs::path(dir) / name).string();
    std::error_code ec;
    if (!fs::exists(tried, ec)) {
      problem = cat("'latest' names ", name, ", which does not exist");
    } else {
      problem = inspect_problem(tried, verify_data);
      if (problem.empty()) return tried;
      problem = cat("'latest' names ", name, ", which cannot be used: ", problem);
    }
  }
  if (files.empty() && name.empty()) {
    fail("no checkpoint to resume in run dir '", run_dir, "': ", problem, " and '", dir,
         "' holds no step_*.h5 file; start without --resume");
  }
  log_warn(problem, "; looking for the newest complete checkpoint in ", dir);
  skipped.push_back(problem);
  for (const std::string& path : files) {
    if (path == tried) continue;
    std::string why = inspect_problem(path, verify_data);
    if (why.empty()) {
      log_warn("using ", path);
      return path;
    }
    log_warn("skipping ", path, ": ", why);
    skipped.push_back(cat(path, ": ", why));
  }
  std::string all;
  for (const std::string& s : skipped) all += "\n  " + s;
  fail("no complete checkpoint in run dir '", run_dir, "' (", files.size(), " step_*.h5 files in '", dir,
       "'):", all, "\nstart without --resume, or restore a checkpoint from a backup");
}

void prune_checkpoints(const std::string& run_dir, int keep_last, int64_t keep_every) {
  if (keep_last <= 0) return;
  const std::string dir = checkpoints_dir(run_dir);
  std::string problem;
  const std::string latest_name = read_latest(dir, &problem);
  const std::string latest = latest_name.empty() ? "" : (fs::path(dir) / latest_name).string();
  int kept = 0;
  for (const std::string& path : checkpoint_files(dir)) {
    std::string why = inspect_problem(path);
    if (!why.empty()) {
      log_warn("not pruning ", path, " (and not counting it as one of the ", keep_last, " kept): ", why);
      continue;
    }
    if (kept < keep_last) {
      ++kept;
      continue;
    }
    if (path == latest) continue;
    const std::optional<int64_t> step = step_of(fs::path(path).filename().string());
    if (keep_every > 0 && step && *step % keep_every == 0) continue;  // a milestone, kept for good
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) log_warn("cannot delete old checkpoint ", path, ": ", ec.message());
  }
}

std::vector<std::string> remove_interrupted_writes(const std::string& run_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (fs::directory_iterator it(checkpoints_dir(run_dir), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t tmp = name.find(".h5.tmp.");
    if (tmp == std::string::npos || !step_of(name.substr(0, tmp + 3))) continue;
    std::error_code rm;
    if (fs::remove(it->path(), rm)) {
      removed.push_back(it->path().string());
    } else if (rm) {
      log_warn("cannot delete the interrupted checkpoint write ", it->path().string(), ": ", rm.message());
    }
  }
  return removed;
}

}  // namespace reel::trainer
