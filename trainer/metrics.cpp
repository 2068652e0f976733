// Matmul rate measurement, JSONL metrics and formatting helpers.
#include "trainer/metrics.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "common/error.h"
#include "common/fs.h"

namespace reel::trainer {

double measure_matmul_flops(int n, double min_seconds, torch::Device device, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);
  torch::Tensor a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts), c = torch::empty({n, n}, opts);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  for (int i = 0; i < 3; ++i) torch::mm_out(c, a, b);
  sync();
  double best = 0;
  auto start = std::chrono::steady_clock::now();
  int reps = 0;
  while (true) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) torch::mm_out(c, a, b);
    sync();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 4.0 * 2.0 * n * n * static_cast<double>(n) / s);
    ++reps;
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed >= min_seconds && reps >= 3) break;
  }
  return best;
}

MatmulReference matmul_reference(torch::Device device, const std::string& dtype) {
  if (!device.is_cuda()) return {1024, torch::kFloat32, "fp32, 1024^3"};
  const bool bf16 = dtype == "bf16";
  return {8192, bf16 ? torch::kBFloat16 : torch::kFloat32, cat(bf16 ? "bf16" : "fp32", ", 8192^3, ", device.str())};
}

std::vector<nlohmann::json> read_jsonl(const std::string& path, bool skip_bad_lines) {
  std::vector<nlohmann::json> out;
  if (!std::filesystem::exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const std::exception& e) {
      if (!skip_bad_lines) fail(path, ":", number, ": not a JSON object (", e.what(), ")");
    }
  }
  return out;
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  std::string dir = path.substr(0, path.find_last_of('/'));
  if (dir != path) make_dirs(dir);
  out_.open(path, std::ios::app);
  if (!out_) fail("cannot open metrics file '", path, "' for appending");
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof(buf), "%lds", s);
  return buf;
}

std::string format_si(double v) {
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (std::fabs(v) >= 1000 && u < 5) { v /= 1000; ++u; }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g%s", v, units[u]);
  return buf;
}

}  // namespace reel::trainer
