// Training telemetry: the machine's measured matmul rate, the JSONL metrics file, and the
// human progress line.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <fstream>
#include <string>
#include <vector>

namespace reel::trainer {

// Achieved FLOP/s of a square matmul of size n in `dtype` on `device`, with the current LibTorch
// thread count on the CPU (best of a few timed repetitions after a warm-up; a CUDA device is
// synchronized around each). The reference for MFU: fp32 1024^3 on the CPU; on a GPU, the
// training dtype at a size that fills it (matmul_reference below).
double measure_matmul_flops(int n = 1024, double min_seconds = 0.5, torch::Device device = torch::kCPU,
                            torch::ScalarType dtype = torch::kFloat32);

// The MFU reference of a run computing in `dtype` ("fp32" | "bf16") on `device`: its size, dtype
// and a label such as "fp32, 1024^3" or "bf16, 8192^3, cuda".
struct MatmulReference {
  int n;
  torch::ScalarType dtype;
  std::string label;
};
MatmulReference matmul_reference(torch::Device device, const std::string& dtype);

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
