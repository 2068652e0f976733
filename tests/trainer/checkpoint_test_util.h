// Helpers shared by the checkpoint tests: a scratch directory, byte-exact tensor comparison, a
// directory listing and a small checkpoint.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "trainer/checkpoint.h"

namespace reel::testing {

namespace fs = std::filesystem;

// An empty scratch directory private to this process, removed with everything in it at scope exit.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(fs::temp_directory_path() / ("reel_ckpt_test_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, ec);
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Same dtype, shape and bytes (NaN payloads and -0.0 included).
inline ::testing::AssertionResult same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type()) {
    return ::testing::AssertionFailure() << "dtype " << a.scalar_type() << " vs " << b.scalar_type();
  }
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  torch::Tensor ca = a.cpu().contiguous(), cb = b.cpu().contiguous();
  if (ca.nbytes() > 0 && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "bytes differ";
  }
  return ::testing::AssertionSuccess();
}


inline std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Two float tensors whose values and recipe text depend on `step`.
inline reel::trainer::Checkpoint small_checkpoint(int64_t step) {
  reel::trainer::Checkpoint c;
  c.step = step;
  c.tensors["model/blocks.0.w"] = torch::arange(64, torch::kFloat).reshape({8, 8}) * static_cast<double>(step);
  c.tensors["model/blocks.0.b"] = torch::full({8}, static_cast<double>(step), torch::kFloat);
  c.meta["recipe"] = "model:\n  name: tiny\nstep: " + std::to_string(step) + "\n";
  return c;
}

}  // namespace reel::testing
