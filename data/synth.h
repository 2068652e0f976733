// A seeded synthetic video-text dataset whose truth is known: coloured shapes that move in a
// straight line (or stay still) over neutral backgrounds, with captions that say so.
//
// Geometry: pixel coordinates are continuous, pixel column x covers [x, x + 1) and row y covers
// [y, y + 1); a centroid measured from a pixel mask as mean(x + 0.5) matches Truth::centers.
// Shapes, for a centre c and radius r (Truth::size):
//   circle   |p - c| <= r
//   square   |dx| <= r and |dy| <= r
//   triangle pointing up, base 2r, height 2r, centroid at c (apex at dy = -4r/3, base at +2r/3)
// Every shape spans 2r horizontally and vertically. Pixels are anti-aliased (4x4 supersampling).
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace reel::data {

// One latent/pixel shape; all samples in a bucket share it.
struct Bucket {
  int frames = 1, height = 16, width = 16;
  std::string name() const;                   // "8x16x16" (frames x height x width)
  static Bucket parse(const std::string& s);  // inverse of name(); UserError on bad text
  int64_t pixels() const { return int64_t(frames) * height * width; }
  bool operator==(const Bucket& o) const;
  bool operator!=(const Bucket& o) const { return !(*this == o); }
  bool operator<(const Bucket& o) const;      // by (frames, height, width)
};

enum Motion : int { kLeft = 0, kRight = 1, kUp = 2, kDown = 3, kStill = 4 };

const std::vector<std::string>& color_names();       // red, green, blue, yellow, purple, cyan, orange
std::array<uint8_t, 3> color_rgb(int color);         // saturated, mutually far apart in RGB
const std::vector<std::string>& shape_names();       // circle, square, triangle
const std::vector<std::string>& motion_names();      // left, right, up, down, still (index = Motion)
const std::vector<std::string>& background_names();  // black, dark grey, grey, white (no hue)
uint8_t background_level(int background);            // the grey level (R = G = B) of a background

struct Truth {
  int color = 0, shape = 0, motion = kStill, background = 0;
  bool textured = false;  // lightly textured background (static noise or stripes, +-10 levels, no hue)
  float size = 0;         // object radius r in pixels (see the geometry above)
  std::vector<std::array<float, 2>> centers;  // per frame (x, y) centroid in pixels, F entries
};

// Where an ingested clip came from (empty path for synthetic clips).
struct SampleSource {
  std::string path;   // the source file as given to `reel data ingest`
  double start = 0;   // seconds into the source where the clip begins
  double fps = 0;     // the source's frame rate (0 for images)
  int width = 0, height = 0;  // the source's picture size before resizing and cropping
};

struct Clip {
  torch::Tensor pixels;  // uint8 (F, H, W, 3)
  std::string caption;   // natural-language caption, no fps token
  int fps = 8;
  Truth truth;           // synthetic clips only (shards written with ShardLayout::truth)
  SampleSource source;   // ingested clips only (ShardLayout::source)
  torch::Tensor audio;   // int16 (S) mono PCM over the clip's span, undefined when it has none
};

// Renders one clip; deterministic in all arguments. The object stays fully inside the frame for
// all frames. Moving objects travel in a straight line at constant speed, 45-60% of the frame
// side along the motion axis over the clip (whatever the frame count); still objects do not
// move. The radius is 12-22% of the shorter frame side. 1-frame buckets are images: `motion` is
// ignored there and recorded as kStill. The background is textured with probability
// `textured_fraction` (an addition to the first API: write_synth_dataset passes its option).
// UserError if an argument is out of range or the bucket is smaller than 8x8 pixels.
Clip render_clip(const Bucket& bucket, int color, int shape, int motion, uint64_t seed, int fps = 8,
                 double textured_fraction = 0.3);

// Varied natural wording chosen by rng: "a red circle slides to the left", "A small blue square
// drifts upward over a grey background", "video of a green triangle that sits still", ...
// Always contains the colour word, the shape word and, for video, the direction: a word from
// motion_names() or that word + "ward" ("leftward", "upward"); never another direction's word.
// Images (is_image) get no motion words. `frame_side` (the shorter frame side in pixels, an
// addition to the first API) lets the caption say "small"/"large" (radius < 15% / > 19% of it);
// 0 means no size adjective.
std::string make_caption(const Truth& truth, bool is_image, std::mt19937_64& rng, int frame_side = 0);

// The canonical, fixed wording used for evaluation prompts (video): "a red circle moving left",
// "an orange square staying still".
std::string canonical_caption(int color, int shape, int motion);

struct EvalPrompt {
  std::string prompt;  // canonical_caption(color, shape, motion)
  uint64_t seed;       // noise seed for generating this prompt's sample
  int color, shape, motion;
};

// `count` prompts, deterministic in (count, seed), and a prefix of any longer list for the same
// seed. Every run of 35 prompts (0-34, 35-69, ...) holds each colour x motion combination once,
// in a seeded order; the shape of a combination changes from one run to the next, so 105
// prompts cover every colour x shape x motion.
std::vector<EvalPrompt> eval_prompts(int count, uint64_t seed);

struct SynthOptions {
  std::string out_dir;           // created; train/ and val/ below it
  std::vector<Bucket> buckets;   // e.g. 8x16x16, 8x16x24 (video), 1x16x16 (images); distinct
  int train_per_bucket = 2048;   // training clips per bucket
  int val_per_bucket = 64;       // validation clips per bucket (a different seed stream)
  int samples_per_shard = 1024;  // shards hold at most this many clips
  int fps = 8;                   // recorded for every clip
  uint64_t seed = 0;             // everything written is a function of the options, seed included
  double textured_fraction = 0.3;  // share of clips with a textured background
  int threads = 0;               // 0 = all cores (std::thread); output identical for any count
};

struct SynthReport {
  int64_t train_samples = 0, val_samples = 0;
  int shards = 0;  // train + val shard files written
};

// Writes OUT/train/<bucket>_<k>.h5 and OUT/val/<bucket>_<k>.h5 (k zero-padded to 5 digits, so
// name order is shard order), OUT/eval_prompts.jsonl (eval_prompts(64, 1234), one JSON object
// per line: {"prompt", "seed", "color", "shape", "motion"} with names) and OUT/dataset.json
// (buckets, counts, fps, palette names, seed), the last one written last. Every file is written
// atomically. Clip content depends on (seed, split, bucket, index) only, so the output is the
// same for any thread count and bucket order. Colour, shape and motion are drawn uniformly per
// clip (image buckets: still). UserError on bad options, or when train/ or val/ already hold
// .h5 files this run would not overwrite (stale shards would join the dataset).
SynthReport write_synth_dataset(const SynthOptions& options);

}  // namespace reel::data
