// Latent shards: a pixel shard's clips encoded by the TAE (`reel data encode`), stored in 16 bits,
// so that training reads latents instead of running the encoder every step.
//
// Format "reel-latent-shard-1" (N samples of one pixel bucket F x H x W):
//   file attributes
//     format   "reel-latent-shard-1"
//     bucket   the pixel bucket, e.g. "8x16x16"
//     latent   string "CxTxHxW" of every latent, e.g. "16x2x4x4"
//     dtype    "bfloat16": latents holds the raw bf16 bits (HDF5 has no bf16 type)
//     count    int32 N
//     source   the pixel shard it was encoded from; tae: the TAE checkpoint
//   datasets
//     latents  uint16 (N, C, T, H, W), one sample per chunk, Fletcher-32 checksummed
//     caption  variable-length UTF-8 strings (N);  fps  int32 (N)
// Written under a temporary name and renamed into place when complete (like pixel shards).
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/synth.h"

namespace reel::data {

constexpr const char* kLatentShardFormat = "reel-latent-shard-1";

struct LatentShardInfo {
  Bucket bucket;                  // the pixel bucket
  std::array<int64_t, 4> latent;  // C, T, H, W
  std::string source, tae;        // provenance attributes
};

class LatentShardWriter {
 public:
  LatentShardWriter(std::string path, LatentShardInfo info);
  ~LatentShardWriter();  // removes the temporary file unless close() succeeded
  LatentShardWriter(const LatentShardWriter&) = delete;
  LatentShardWriter& operator=(const LatentShardWriter&) = delete;

  // Appends latents (B, C, T, H, W) of any floating type (stored rounded to bf16) with their
  // captions and fps; UserError on a shape other than info.latent.
  void add(const torch::Tensor& latents, const std::vector<std::string>& captions, const std::vector<int>& fps);
  void close();
  int64_t size() const { return int64_t(captions_.size()); }

 private:
  struct Handles;
  std::string path_;
  LatentShardInfo info_;
  std::unique_ptr<Handles> h_;
  std::vector<std::string> captions_;
  std::vector<int32_t> fps_;
};

// Reads a latent shard; UserError naming the file if it is not one or is damaged.
class LatentShardReader {
 public:
  explicit LatentShardReader(const std::string& path);
  ~LatentShardReader();
  const LatentShardInfo& info() const { return info_; }
  int64_t size() const { return int64_t(captions_.size()); }
  torch::Tensor read(int64_t index) const;  // float32 (C, T, H, W)
  const std::string& caption(int64_t index) const { return captions_.at(size_t(index)); }
  int fps(int64_t index) const { return fps_.at(size_t(index)); }

 private:
  struct Handles;
  std::string path_;
  LatentShardInfo info_;
  std::unique_ptr<Handles> h_;
  std::vector<std::string> captions_;
  std::vector<int32_t> fps_;
};

}  // namespace reel::data
