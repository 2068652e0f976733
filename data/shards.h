// The HDF5 shard format of Reel datasets: one file holds N clips of one bucket.
//
// Format "reel-shard-1" (N samples of bucket F x H x W):
//   file attributes
//     format    string  "reel-shard-1"
//     bucket    string  Bucket::name(), e.g. "8x16x16"
//     frames, height, width, channels   int32 scalars: F, H, W, 3
//     count     int32 scalar: N
//   datasets
//     pixels    uint8 (N, F, H, W, 3), chunked one sample per chunk, Fletcher-32 checksummed
//     caption   variable-length UTF-8 strings (N)
//     fps       int32 (N)
//     truth/color, truth/shape, truth/motion, truth/background   int32 (N): indices into
//               color_names(), shape_names(), motion_names(), background_names()
//     truth/textured   uint8 (N): 0 or 1
//     truth/size       float32 (N): object radius in pixels
//     truth/centers    float32 (N, F, 2): per-frame (x, y) object centroid in pixels
// Optional parts (ShardLayout): synthetic shards have `truth/`; ingested shards have none and
// instead carry per-sample metadata and audio:
//     meta/source      variable-length UTF-8 strings (N): the source file
//     meta/start       float64 (N): seconds into the source where the clip begins
//     meta/source_fps  float64 (N): the source's frame rate (0 for images)
//     meta/source_size int32 (N, 2): the source's width and height before resizing/cropping
//     audio            int16 (N, S): mono PCM over each clip's span (zeros where has_audio is 0);
//                      file attributes audio_rate (Hz) and audio_samples (S)
//     has_audio        uint8 (N)
// String attributes are written variable-length (readers also accept fixed-length). Files use
// the HDF5 1.8+ object format.
//
// Thread-safety: the HDF5 C library here is not thread-safe, so every HDF5 call in Reel must
// hold hdf5_mutex(); the classes below do. Code elsewhere that calls HDF5 (checkpoints) while a
// Loader may be reading must hold it too.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/synth.h"

namespace reel::data {

// The one process-wide lock around HDF5 calls (recursive, so a holder may call into Reel code
// that takes it again).
std::recursive_mutex& hdf5_mutex();

// Which optional parts a shard holds.
struct ShardLayout {
  bool truth = true;          // the truth/ group (synthetic datasets)
  bool source = false;        // the meta/ group (ingested datasets)
  int audio_rate = 0;         // > 0: an audio dataset of audio_samples per clip at this rate
  int64_t audio_samples = 0;  // S, >= 1 when audio_rate > 0
};

// Writes one shard. The file is written under a temporary name next to `path` and appears under
// `path` only when close() succeeds (atomically, via common/fs.h); a writer destroyed before
// close() removes its temporary file. Not thread-safe (one writer per thread); different
// writers may run on different threads. Pixels are written as clips are added, the rest at close.
class ShardWriter {
 public:
  // UserError if the temporary file cannot be created.
  ShardWriter(std::string path, Bucket bucket, ShardLayout layout = {});
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends a clip; UserError if its pixels are not uint8 (F, H, W, 3) of the bucket, its truth
  // (when the layout has truth) does not have F centers, or its audio (when defined) is not
  // int16 of audio_samples.
  void add(const Clip& clip);
  void close();  // writes captions, fps, truth and attributes, then renames into place
  int64_t size() const { return int64_t(captions_.size()); }

 private:
  struct Handles;
  std::string path_;
  Bucket bucket_;
  ShardLayout layout_;
  std::unique_ptr<Handles> h_;  // open HDF5 objects, null after close()
  std::vector<std::string> captions_;
  std::vector<int32_t> fps_;
  std::vector<Truth> truths_;
  std::vector<SampleSource> sources_;
  void write_truth(int64_t file);    // hid_t
  void write_sources(int64_t file);
  std::vector<int16_t> audio_;  // N x S
  std::vector<uint8_t> has_audio_;
};

// The "format" attribute of an HDF5 file ("reel-shard-1", "reel-latent-shard-1", ...); UserError
// naming the file if it is not a readable HDF5 file or has no format attribute.
std::string shard_format(const std::string& path);

// Reads one shard. Opening checks the whole structure and loads captions, fps and truth; pixels
// are read on demand by hyperslab. All methods are thread-safe.
class ShardReader {
 public:
  // UserError naming the path if the file is not HDF5, not a reel shard, lacks a dataset, has
  // a wrong shape or dtype, is truncated, or holds out-of-range truth.
  explicit ShardReader(const std::string& path);
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  const std::string& path() const { return path_; }
  const Bucket& bucket() const { return bucket_; }
  int64_t size() const { return int64_t(captions_.size()); }

  // One sample; UserError if index is outside [0, size()) or its data cannot be read (a
  // corrupted chunk fails its checksum).
  Clip read(int64_t index) const;
  torch::Tensor read_pixels(int64_t index) const;  // uint8 (F, H, W, 3)
  const std::string& caption(int64_t index) const;
  const Truth& truth(int64_t index) const;  // UserError if the shard has no truth
  int fps(int64_t index) const;
  const ShardLayout& layout() const { return layout_; }
  const SampleSource& source(int64_t index) const;  // UserError if the shard has no meta/
  torch::Tensor read_audio(int64_t index) const;     // int16 (S); undefined if the clip has none

 private:
  void check_index(int64_t index) const;
  struct Handles;
  std::string path_;
  Bucket bucket_;
  ShardLayout layout_;
  std::unique_ptr<Handles> h_;  // the open file and pixels dataset
  std::vector<std::string> captions_;
  std::vector<int32_t> fps_;
  std::vector<Truth> truths_;
  std::vector<SampleSource> sources_;
  std::vector<uint8_t> has_audio_;
  void read_truth(int64_t file);  // hid_t
  void read_sources(int64_t file);
};

}  // namespace reel::data
