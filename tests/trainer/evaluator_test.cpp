// Clip evaluator: renders random clips of the synthetic dataset's kind (one coloured circle,
// square or triangle moving on a neutral, possibly textured background) and checks that
// analyze_clip recovers colour, shape and motion, also under noise, blur and an MP4 round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

#include "common/error.h"
#include "data/video_io.h"
#include "trainer/evaluator.h"

namespace fs = std::filesystem;
using reel::trainer::analyze_clip;
using reel::trainer::ClipAnalysis;

namespace {

using Palette = std::vector<std::array<uint8_t, 3>>;

// Two palettes of the seven colours red, green, blue, yellow, purple, cyan, orange: a muted one
// and the fully saturated one the synthetic dataset (data/synth.cpp) uses.
const Palette kPalette = {{220, 40, 40}, {40, 180, 60}, {40, 80, 220}, {220, 200, 40},
                          {150, 60, 200}, {40, 200, 210}, {240, 140, 30}};
const Palette kDatasetPalette = {{255, 0, 0}, {0, 200, 0}, {0, 0, 255}, {255, 255, 0},
                                 {160, 32, 240}, {0, 255, 255}, {255, 128, 0}};
constexpr int kVelocity[5][2] = {{-1, 0}, {1, 0}, {0, -1}, {0, 1}, {0, 0}};  // left, right, up, down, still

enum Texture { kFlat, kNoise, kStripes };

// One clip to render. Pixel column x covers [x, x + 1), so a centre is the object's centroid
// in the evaluator's convention (circles and squares; see `inside` for triangles).
struct Scene {
  const Palette* palette = &kPalette;
  int color = 0, shape = 0, motion = 4;
  float radius = 4;
  std::vector<std::array<float, 2>> centers = std::vector<std::array<float, 2>>(8, {8, 8});  // per frame
  int height = 16, width = 16;
  float background = 128;       // grey level
  std::array<float, 3> tint{};  // small per-channel offset of the background
  Texture texture = kFlat;
  float texture_amplitude = 8;
  bool antialias = true;           // 4x4 supersampled coverage, else a pixel-centre test
  bool centroid_triangle = false;  // triangle as data/synth.h draws it, see `inside`
  int frames() const { return static_cast<int>(centers.size()); }
};

// Whether point (dx, dy) from the centre lies in the shape of "radius" r: circle of radius r,
// square of half-side r, triangle pointing up with base 2r and height 2r: apex at dy = -r and
// base at dy = r, or (centroid_triangle) apex at -4r/3 and base at 2r/3 so the centre is its
// centroid.
bool inside(int shape, float dx, float dy, float r, bool centroid_triangle) {
  switch (shape) {
    case 0: return dx * dx + dy * dy <= r * r;
    case 1: return std::abs(dx) <= r && std::abs(dy) <= r;
    default: {
      const float top = centroid_triangle ? -4 * r / 3 : -r;
      return dy >= top && dy <= top + 2 * r && std::abs(dx) <= (dy - top) / 2;
    }
  }
}

// Renders the scene: uint8 (F, H, W, 3); the texture is static over time.
torch::Tensor render(const Scene& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  const float angle = static_cast<float>(M_PI) * u(rng), period = 3 + 3 * u(rng), phase = 6.283f * u(rng);
  std::vector<float> texture(static_cast<size_t>(s.height) * s.width, 0.0f);
  for (int y = 0; y < s.height; ++y) {
    for (int x = 0; x < s.width; ++x) {
      float& t = texture[y * s.width + x];
      if (s.texture == kNoise) t = s.texture_amplitude * (2 * u(rng) - 1);
      if (s.texture == kStripes) {
        const float along = (x + 0.5f) * std::cos(angle) + (y + 0.5f) * std::sin(angle);
        t = s.texture_amplitude * std::sin(6.283f * along / period + phase);
      }
    }
  }
  torch::Tensor clip = torch::empty({s.frames(), s.height, s.width, 3}, torch::kUInt8);
  auto a = clip.accessor<uint8_t, 4>();
  const int samples = s.antialias ? 4 : 1;
  const std::array<uint8_t, 3>& rgb = (*s.palette)[s.color];
  for (int f = 0; f < s.frames(); ++f) {
    const float cx = s.centers[f][0], cy = s.centers[f][1];
    for (int y = 0; y < s.height; ++y) {
      for (int x = 0; x < s.width; ++x) {
        int hits = 0;
        for (int sy = 0; sy < samples; ++sy) {
          for (int sx = 0; sx < samples; ++sx) {
            const float px = x + (sx + 0.5f) / samples, py = y + (sy + 0.5f) / samples;
            hits += inside(s.shape, px - cx, py - cy, s.radius, s.centroid_triangle);
          }
        }
        const float cover = static_cast<float>(hits) / (samples * samples);
        for (int c = 0; c < 3; ++c) {
          const float bg = s.background + s.tint[c] + texture[y * s.width + x];
          const float v = bg * (1 - cover) + rgb[c] * cover;
          a[f][y][x][c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
      }
    }
  }
  return clip;
}

// The brief's scenes: radius 3-5 on 16x16 (a quarter 16x24), moving 1 px per frame or still,
// black / grey / white-ish backgrounds, up to 40% of the radius off the edge.
Scene brief_scene(std::mt19937& rng, int frames) {
  std::uniform_real_distribution<float> u(0, 1);
  Scene s;
  s.color = static_cast<int>(rng() % kPalette.size());
  s.shape = static_cast<int>(rng() % 3);
  s.motion = frames > 1 ? static_cast<int>(rng() % 5) : 4;
  s.width = rng() % 4 == 0 ? 24 : 16;
  s.radius = 3 + 2 * u(rng);
  s.antialias = rng() % 4 != 0;
  if (!s.antialias) s.radius = std::round(s.radius);
  const float travel = static_cast<float>(frames - 1);
  auto place = [&](int extent, int velocity) {
    const float margin = velocity == 0 ? s.radius : 0.6f * s.radius;
    const float lo = margin - std::min(0, velocity) * travel, hi = extent - margin - std::max(0, velocity) * travel;
    const float c = lo + (hi - lo) * u(rng);
    return s.antialias ? c : std::round(c);
  };
  const float x0 = place(s.width, kVelocity[s.motion][0]), y0 = place(s.height, kVelocity[s.motion][1]);
  s.centers.clear();
  for (int f = 0; f < frames; ++f) {
    s.centers.push_back({x0 + kVelocity[s.motion][0] * f, y0 + kVelocity[s.motion][1] * f});
  }
  const float levels[] = {15, 128, 225};
  s.background = levels[rng() % 3] + 20 * (u(rng) - 0.5f);
  for (float& t : s.tint) t = 6 * (u(rng) - 0.5f);
  s.texture = static_cast<Texture>(rng() % 3);
  return s;
}

// Scenes distributed as data/synth.h documents its clips: saturated palette, radius 12-22% of
// the shorter side, the object wholly inside the frame, travelling 45-60% of the frame side,
// grey levels 16/72/128/224, 30% textured (static noise or stripes, +-10 levels).
Scene dataset_scene(std::mt19937& rng, int frames) {
  std::uniform_real_distribution<float> u(0, 1);
  Scene s;
  s.palette = &kDatasetPalette;
  s.centroid_triangle = true;
  s.color = static_cast<int>(rng() % kDatasetPalette.size());
  s.shape = static_cast<int>(rng() % 3);
  s.motion = frames > 1 ? static_cast<int>(rng() % 5) : 4;
  s.width = rng() % 2 == 0 ? 24 : 16;
  s.radius = (0.12f + 0.1f * u(rng)) * std::min(s.height, s.width);
  const float r = s.radius, margin = 0.25f;
  const bool tri = s.shape == 2;
  const float lo[2] = {r + margin, (tri ? 4 * r / 3 : r) + margin};
  const float hi[2] = {s.width - r - margin, s.height - (tri ? 2 * r / 3 : r) - margin};
  float start[2], end[2];
  for (int a = 0; a < 2; ++a) start[a] = end[a] = lo[a] + (hi[a] - lo[a]) * u(rng);
  if (s.motion != 4) {
    const int axis = s.motion < 2 ? 0 : 1;
    const float side = axis == 0 ? s.width : s.height;
    const float travel = std::min(hi[axis] - lo[axis], (0.45f + 0.15f * u(rng)) * side);
    const float from = lo[axis] + (hi[axis] - lo[axis] - travel) * u(rng);
    const bool forward = s.motion == 1 || s.motion == 3;
    start[axis] = forward ? from : from + travel;
    end[axis] = forward ? from + travel : from;
  }
  s.centers.clear();
  for (int f = 0; f < frames; ++f) {
    const float t = frames > 1 ? static_cast<float>(f) / (frames - 1) : 0;
    s.centers.push_back({start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])});
  }
  const float levels[] = {16, 72, 128, 224};
  s.background = levels[rng() % 4];
  s.texture = u(rng) < 0.3f ? (rng() % 2 ? kNoise : kStripes) : kFlat;
  s.texture_amplitude = 10;
  return s;
}

// Centres moving (vx, vy) pixels per frame from (x0, y0).
std::vector<std::array<float, 2>> straight_path(float x0, float y0, float vx, float vy, int frames) {
  std::vector<std::array<float, 2>> centers;
  for (int f = 0; f < frames; ++f) centers.push_back({x0 + vx * f, y0 + vy * f});
  return centers;
}

// Adds Gaussian noise of the given sigma (0-255 units) to every pixel and channel.
torch::Tensor add_noise(const torch::Tensor& clip, float sigma, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const torch::Tensor noise = at::normal(0.0, sigma, clip.sizes(), gen);
  return (clip.to(torch::kFloat) + noise).round().clamp(0, 255).to(torch::kUInt8);
}

// Blurs every frame with a 3x3 binomial kernel (sigma ~0.7 px), as a generator's output is.
torch::Tensor blur(const torch::Tensor& clip) {
  const int64_t F = clip.size(0), H = clip.size(1), W = clip.size(2);
  const torch::Tensor k = torch::tensor({0.25f, 0.5f, 0.25f});
  torch::Tensor x = clip.to(torch::kFloat).permute({0, 3, 1, 2}).reshape({F * 3, 1, H, W});
  x = torch::conv2d(torch::replication_pad2d(x, {1, 1, 1, 1}), (k.view({3, 1}) * k.view({1, 3})).view({1, 1, 3, 3}));
  return x.view({F, 3, H, W}).permute({0, 2, 3, 1}).round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

struct Accuracy {
  int n = 0, found = 0, color = 0, shape = 0, motion = 0;
  void add(const Scene& s, const ClipAnalysis& r) {
    ++n;
    found += r.found;
    color += r.color == s.color;
    shape += r.shape == s.shape;
    motion += r.motion == s.motion;
  }
  double rate(int hits) const { return static_cast<double>(hits) / n; }
  void print(const std::string& what) const {
    std::printf("[          ] %-32s n=%d found %.3f colour %.3f shape %.3f motion %.3f\n", what.c_str(), n,
                rate(found), rate(color), rate(shape), rate(motion));
  }
};

using SceneMaker = Scene (*)(std::mt19937&, int);

// Scores `count` random scenes, each passed through `transform` (clip, index -> clip) first.
template <typename Transform>
Accuracy score_random_clips(SceneMaker make, int count, uint32_t seed, Transform&& transform, int frames = 8) {
  std::mt19937 rng(seed);
  Accuracy acc;
  for (int i = 0; i < count; ++i) {
    const Scene s = make(rng, frames);
    const torch::Tensor clip = transform(render(s, rng()), i);
    acc.add(s, analyze_clip(clip, *s.palette));
  }
  return acc;
}

const auto kIdentity = [](const torch::Tensor& clip, int) { return clip; };
const auto kNoisy = [](const torch::Tensor& clip, int i) { return add_noise(clip, 10, 1000 + i); };
const auto kBlurredNoisy = [](const torch::Tensor& clip, int i) { return add_noise(blur(clip), 10, 2000 + i); };

// Writes each clip to an MP4 (H.264 4:2:0, scale 1) and decodes it again.
class Mp4RoundTrip {
 public:
  Mp4RoundTrip() : dir_(fs::temp_directory_path() / ("reel_evaluator_mp4_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
  }
  ~Mp4RoundTrip() { fs::remove_all(dir_); }
  torch::Tensor operator()(const torch::Tensor& clip, int) const {
    const std::string file = (dir_ / "clip.mp4").string();
    reel::data::write_mp4(file, clip, 8);
    return reel::data::read_video(file);
  }

 private:
  fs::path dir_;
};

void expect_accuracy(const Accuracy& acc, double color, double motion, double shape) {
  EXPECT_EQ(acc.found, acc.n);
  EXPECT_GE(acc.rate(acc.color), color);
  EXPECT_GE(acc.rate(acc.motion), motion);
  EXPECT_GE(acc.rate(acc.shape), shape);
}

}  // namespace

TEST(Evaluator, CleanClips) {
  for (auto [name, make] : {std::pair<const char*, SceneMaker>{"brief", brief_scene}, {"dataset", dataset_scene}}) {
    const Accuracy acc = score_random_clips(make, 400, 1, kIdentity);
    acc.print(std::string(name) + " clean");
    expect_accuracy(acc, 0.98, 0.98, 0.80);
  }
}

TEST(Evaluator, GaussianNoiseSigma10) {
  for (auto [name, make] : {std::pair<const char*, SceneMaker>{"brief", brief_scene}, {"dataset", dataset_scene}}) {
    const Accuracy acc = score_random_clips(make, 400, 2, kNoisy);
    acc.print(std::string(name) + " noise sigma 10");
    expect_accuracy(acc, 0.98, 0.98, 0.80);
  }
}

TEST(Evaluator, BlurredAndNoisyClips) {
  for (auto [name, make] : {std::pair<const char*, SceneMaker>{"brief", brief_scene}, {"dataset", dataset_scene}}) {
    const Accuracy acc = score_random_clips(make, 400, 5, kBlurredNoisy);
    acc.print(std::string(name) + " blur + noise sigma 10");
    expect_accuracy(acc, 0.98, 0.98, 0.80);
  }
}

TEST(Evaluator, Mp4RoundTrip) {
  const Mp4RoundTrip mp4;
  for (auto [name, make] : {std::pair<const char*, SceneMaker>{"brief", brief_scene}, {"dataset", dataset_scene}}) {
    const Accuracy acc = score_random_clips(make, 150, 3, mp4);
    acc.print(std::string(name) + " mp4 round trip");
    expect_accuracy(acc, 0.98, 0.98, 0.80);
  }
}

TEST(Evaluator, SingleImages) {
  for (auto [name, make] : {std::pair<const char*, SceneMaker>{"brief", brief_scene}, {"dataset", dataset_scene}}) {
    const Accuracy acc = score_random_clips(make, 200, 4, kIdentity, /*frames=*/1);
    acc.print(std::string(name) + " 1-frame images");
    expect_accuracy(acc, 0.98, 1.0, 0.80);  // an image's motion is still
  }
}

TEST(Evaluator, BlankClipsFindNothing) {
  std::mt19937 rng(5);
  for (Texture texture : {kFlat, kNoise, kStripes}) {
    for (float level : {10.0f, 128.0f, 230.0f}) {
      Scene s;
      s.texture = texture;
      s.background = level;
      s.centers.assign(8, {-100, -100});  // the object is far outside the frame
      const torch::Tensor blank = render(s, rng());
      EXPECT_FALSE(analyze_clip(blank, kPalette).found) << "texture " << texture << " level " << level;
      const ClipAnalysis noisy = analyze_clip(add_noise(blank, 10, rng()), kPalette);
      EXPECT_FALSE(noisy.found) << "noisy, texture " << texture << " level " << level;
      EXPECT_EQ(noisy.color, -1);
      EXPECT_TRUE(noisy.centers.empty());
    }
  }
}

TEST(Evaluator, CentresFollowTheObject) {
  Scene s;
  s.shape = 1;
  s.color = 2;
  s.radius = 2;
  s.centers = straight_path(4.5f, 7.5f, 1, 0, 8);  // right, 1 px per frame
  s.antialias = false;
  const ClipAnalysis r = analyze_clip(render(s, 1), kPalette);
  ASSERT_TRUE(r.found);
  ASSERT_EQ(r.centers.size(), 8u);
  for (int f = 0; f < 8; ++f) {  // pixel x spans [x, x + 1): the 5x5 square at columns 2-6 centres at 4.5
    EXPECT_NEAR(r.centers[f][0], 4.5 + f, 0.01) << "frame " << f;
    EXPECT_NEAR(r.centers[f][1], 7.5, 0.01) << "frame " << f;
  }
  EXPECT_NEAR(r.dx, 7, 0.01);
  EXPECT_NEAR(r.dy, 0, 0.01);
  EXPECT_EQ(r.motion, reel::trainer::kMotionRight);
  EXPECT_EQ(r.color, 2);
}

TEST(Evaluator, FramesWithoutTheObjectReuseTheNearestCentre) {
  Scene s;
  s.centers = straight_path(8, 4.5f, 0, 1, 8);  // down
  torch::Tensor clip = render(s, 1);
  clip[0].fill_(128);  // the object is missing from the first and last frames
  clip[7].fill_(128);
  const ClipAnalysis r = analyze_clip(clip, kPalette);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.motion, reel::trainer::kMotionDown);
  EXPECT_EQ(r.centers[0], r.centers[1]);
  EXPECT_EQ(r.centers[7], r.centers[6]);
}

TEST(Evaluator, StrayBlobDoesNotMoveTheCentre) {
  Scene s;
  s.shape = 0;
  s.color = 0;
  s.centers = straight_path(10.5f, 10.5f, 0, 0, 8);  // still
  torch::Tensor clip = render(s, 1);
  clip.narrow(1, 1, 2).narrow(2, 1, 2).select(3, 1).fill_(220);  // a 2x2 green speck in a corner
  const ClipAnalysis r = analyze_clip(clip, kPalette);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.color, 0);
  EXPECT_EQ(r.motion, reel::trainer::kMotionStill);
  EXPECT_NEAR(r.centers[0][0], 10.5, 0.05);
  EXPECT_NEAR(r.centers[0][1], 10.5, 0.05);
}

TEST(Evaluator, BadInputThrows) {
  EXPECT_THROW(analyze_clip(torch::zeros({8, 16, 16, 3}), kPalette), reel::UserError);  // float
  EXPECT_THROW(analyze_clip(torch::zeros({8, 3, 16, 16}, torch::kUInt8), kPalette), reel::UserError);
  EXPECT_THROW(analyze_clip(torch::zeros({8, 16, 16, 3}, torch::kUInt8), {}), reel::UserError);
}
