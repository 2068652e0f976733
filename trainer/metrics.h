// Training telemetry: the machine's measured matmul rate, the JSONL metrics file, and the
// human progress line.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace reel::trainer {

// Achieved fp32 FLOP/s of a square matmul of size n with the current LibTorch thread count
// (best of a few timed repetitions after a warm-up). The reference for MFU on CPU.
double measure_matmul_flops(int n = 1024, double min_seconds = 0.5);

// The objects of a JSON-lines file (metrics.jsonl, eval.jsonl); none if it does not exist. A line
// that does not parse (cut by a crash while appended) is skipped with skip_bad_lines, else a
// UserError names path:line.
std::vector<nlohmann::json> read_jsonl(const std::string& path, bool skip_bad_lines);

// Appends one JSON object per line to <path>, flushed after every record so a crash loses
// nothing already logged. Not thread-safe.
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

// "1m23s" style durations; "--" for negative or non-finite.
std::string format_duration(double seconds);
// "12.3 G" style SI numbers.
std::string format_si(double value);

}  // namespace reel::trainer
