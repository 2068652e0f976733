// `reel data ingest`: a folder of real media files -> bucketed HDF5 shards a Reel model trains on.
//
// Every file FFmpeg reads is taken: videos (MP4, MKV, WebM, ...) are resampled to the grid's
// frame rate, resized to cover the bucket of the nearest aspect ratio and centre-cropped, and cut
// into consecutive clips from the start, each as long as the longest bucket that still fits what
// is left; their audio track (if any) is cut with them. Images (PNG, JPEG, ...) become 1-frame
// samples of the nearest aspect ratio. Audio-only files (WAV, FLAC, ...) become audio clips of
// the same durations. Captions come from a JSONL ({"path": ..., "caption": ...}) or CSV
// (path,caption) sidecar. Files that cannot be read are skipped, counted and listed in the
// report; the run still succeeds.
//
// Output (DIR = out_dir):
//   DIR/train/<bucket>_<commit>.h5       video/image shards ("reel-shard-1", data/shards.h,
//   DIR/val/<bucket>_<commit>.h5         without truth/, with meta/ and audio)
//   DIR/train/audio/<S>_<commit>.h5      audio-only shards ("reel-audio-shard-1", audio_shards.h)
//   DIR/ingest_journal.jsonl             the commits so far (what makes a rerun resume)
//   DIR/ingest_report.json, DIR/dataset.json
// Worker threads each take whole files and close their open shards together every
// samples_per_shard clips (a commit): the shards are renamed into place, then one journal line
// names them and the files they complete. A rerun after a crash deletes shards no journal line
// names, skips the files the journal names, and goes on.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/synth.h"

namespace reel::data {

// The buckets media is cut into: every size (one per aspect ratio) crossed with every clip
// length, and a 1-frame image bucket per size.
struct BucketGrid {
  int fps = 8;
  std::vector<std::pair<int, int>> sizes = {{16, 16}, {16, 24}, {24, 16}};  // (height, width)
  std::vector<int> frames = {8};                                            // clip lengths, >= 2

  void check() const;  // UserError for an empty or invalid grid
  // The size whose aspect ratio is nearest (in log ratio) to width / height; ties go to the first.
  std::pair<int, int> nearest_size(int width, int height) const;
  struct Cut {
    double start;  // seconds
    int frames;
  };
  // Consecutive clips from time 0 of a `seconds`-long video: each the longest length that still
  // fits in what is left; empty if the video is shorter than the shortest length.
  std::vector<Cut> cuts(double seconds) const;
};

struct IngestOptions {
  std::vector<std::string> sources;  // files and directories (walked recursively, sorted)
  std::string out_dir;
  BucketGrid grid;
  std::string captions;          // sidecar .jsonl or .csv; "" = captions.jsonl/.csv in a source directory
  int threads = 0;               // worker threads, 0 = every core
  double val_fraction = 0;       // share of files (by a hash of their path) written to val/
  int samples_per_shard = 64;    // clips per worker between commits, >= 1
  int audio_rate = 16000;        // Hz of every stored audio track, >= 1
};

struct IngestReport {
  int64_t files = 0;     // media files found
  int64_t ingested = 0;  // files that gave at least one sample
  int64_t images = 0, videos = 0, audio_files = 0;
  int64_t uncaptioned = 0;                             // ingested files without a caption
  std::vector<std::pair<std::string, std::string>> skipped;  // (file, reason)
  std::map<std::string, int64_t> clips;                // bucket name ("8x16x24") -> samples (train + val)
  std::map<std::string, int64_t> audio_clips;          // samples per clip ("16000") -> clips
  int64_t resumed_files = 0;                           // files a previous, interrupted run committed
  double seconds = 0;                                  // wall time of this run
};

// UserError for bad options, an unreadable caption sidecar, or an out_dir holding shards that no
// ingest journal accounts for. Unreadable media files are skipped, never thrown.
IngestReport ingest_media(const IngestOptions& options);

}  // namespace reel::data
