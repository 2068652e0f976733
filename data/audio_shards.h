// The HDF5 shard format of audio-only clips (`reel data ingest` of WAV, FLAC, ... files), the
// pre-training data of a video-to-audio model.
//
// Format "reel-audio-shard-1" (N clips of S samples each):
//   file attributes   format "reel-audio-shard-1", rate (Hz), samples (S), count (N)
//   datasets
//     audio           int16 (N, S): mono PCM
//     caption         variable-length UTF-8 strings (N)
//     meta/source     variable-length UTF-8 strings (N): the source file
//     meta/start      float64 (N): seconds into the source where the clip begins
// Written like a video shard: complete under a temporary name, then renamed into place.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace reel::data {

struct AudioClip {
  torch::Tensor audio;  // int16 (S)
  std::string caption;
  std::string source;   // the source file
  double start = 0;     // seconds into it
};

// Collects clips in memory and writes the file at close(); one writer per thread.
class AudioShardWriter {
 public:
  AudioShardWriter(std::string path, int rate, int64_t samples);
  void add(AudioClip clip);  // UserError unless clip.audio is int16 (S)
  void close();              // writes the file atomically (common/fs.h)
  int64_t size() const { return int64_t(clips_.size()); }

 private:
  std::string path_;
  int rate_;
  int64_t samples_;
  std::vector<AudioClip> clips_;
};

// Reads a whole audio shard; UserError naming the file if it is not one or is damaged.
struct AudioShard {
  int rate = 0;
  int64_t samples = 0;
  std::vector<AudioClip> clips;
};
AudioShard read_audio_shard(const std::string& path);

}  // namespace reel::data
