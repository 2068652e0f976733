// Synthetic clips: buckets, the palette, and the renderer of one moving (or still) shape.
#include "data/synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/error.h"
#include "data/internal/random.h"

namespace reel::data {

std::string Bucket::name() const { return cat(frames, "x", height, "x", width); }

Bucket Bucket::parse(const std::string& s) {
  auto bad = [&](const std::string& why) -> Bucket {
    fail("bad bucket '", s, "': ", why, "; expected FRAMESxHEIGHTxWIDTH with positive integers, e.g. 8x16x16");
  };
  int values[3];
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    size_t end = i < 2 ? s.find('x', pos) : s.size();
    if (end == std::string::npos) return bad("it needs three numbers separated by 'x'");
    std::string part = s.substr(pos, end - pos);
    const bool digits = std::all_of(part.begin(), part.end(), [](unsigned char ch) { return std::isdigit(ch); });
    if (part.empty() || part.size() > 6 || !digits)
      return bad(cat("'", part, "' is not a number from 1 to 999999"));
    values[i] = std::stoi(part);
    if (values[i] < 1) return bad(cat("'", part, "' must be at least 1"));
    pos = end + 1;
  }
  return Bucket{values[0], values[1], values[2]};
}

bool Bucket::operator==(const Bucket& o) const {
  return frames == o.frames && height == o.height && width == o.width;
}

bool Bucket::operator<(const Bucket& o) const {
  if (frames != o.frames) return frames < o.frames;
  if (height != o.height) return height < o.height;
  return width < o.width;
}

const std::vector<std::string>& color_names() {
  static const std::vector<std::string> names = {"red", "green", "blue", "yellow", "purple", "cyan", "orange"};
  return names;
}

std::array<uint8_t, 3> color_rgb(int color) {
  // Pairwise RGB distance >= 127 (red-orange, orange-yellow); every channel 0 or >= 128 bright.
  static const std::array<uint8_t, 3> rgb[] = {
      {255, 0, 0}, {0, 200, 0}, {0, 0, 255}, {255, 255, 0}, {160, 32, 240}, {0, 255, 255}, {255, 128, 0}};
  if (color < 0 || color >= int(color_names().size()))
    fail("colour index ", color, " is out of range [0, ", color_names().size(), ")");
  return rgb[color];
}

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle"};
  return names;
}

const std::vector<std::string>& motion_names() {
  static const std::vector<std::string> names = {"left", "right", "up", "down", "still"};
  return names;
}

const std::vector<std::string>& background_names() {
  static const std::vector<std::string> names = {"black", "dark grey", "grey", "white"};
  return names;
}

uint8_t background_level(int background) {
  static const uint8_t levels[] = {16, 72, 128, 224};
  if (background < 0 || background >= int(background_names().size()))
    fail("background index ", background, " is out of range [0, ", background_names().size(), ")");
  return levels[background];
}

namespace {

constexpr double kMargin = 0.25;  // pixels kept between the object's extent and the frame edge
constexpr int kSuper = 4;         // supersampling per axis for anti-aliasing
constexpr double kTextureAmplitude = 10;

bool inside(int shape, double dx, double dy, double r) {
  switch (shape) {
    case 0: return dx * dx + dy * dy <= r * r;
    case 1: return std::abs(dx) <= r && std::abs(dy) <= r;
    default:  // triangle: apex (0, -4r/3), base corners (+-r, 2r/3); half-width grows linearly
      return dy >= -4 * r / 3 && dy <= 2 * r / 3 && std::abs(dx) <= (dy + 4 * r / 3) / 2;
  }
}

// Extent of a shape from its centre: {left, right, top, bottom} in pixels.
std::array<double, 4> extent(int shape, double r) {
  if (shape == 2) return {r, r, 4 * r / 3, 2 * r / 3};
  return {r, r, r, r};
}

// Background grey levels (H, W) as doubles: flat, or flat + static noise / stripes.
std::vector<double> render_background(const Truth& truth, int height, int width, std::mt19937_64& rng) {
  std::vector<double> bg(size_t(height) * width, background_level(truth.background));
  if (!truth.textured) return bg;
  if (detail::below(rng, 2) == 0) {
    for (double& v : bg) v += detail::uniform(rng, -kTextureAmplitude, kTextureAmplitude);
  } else {
    double angle = detail::uniform(rng, 0, M_PI), period = detail::uniform(rng, 3, 6);
    double phase = detail::uniform(rng, 0, 2 * M_PI);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        bg[size_t(y) * width + x] += kTextureAmplitude *
            std::sin(2 * M_PI * ((x + 0.5) * std::cos(angle) + (y + 0.5) * std::sin(angle)) / period + phase);
  }
  return bg;
}

// Straight constant-speed path of the centre: F points, inside [lo, hi] on both axes.
std::vector<std::array<float, 2>> plan_path(const Bucket& b, int shape, int motion, double r, std::mt19937_64& rng) {
  std::array<double, 4> ext = extent(shape, r);
  const double lo[2] = {ext[0] + kMargin, ext[2] + kMargin};
  const double hi[2] = {b.width - ext[1] - kMargin, b.height - ext[3] - kMargin};
  double start[2], end[2];
  for (int a = 0; a < 2; ++a) start[a] = end[a] = detail::uniform(rng, lo[a], hi[a]);
  if (b.frames > 1 && motion != kStill) {
    int axis = (motion == kLeft || motion == kRight) ? 0 : 1;
    double side = axis == 0 ? b.width : b.height;
    double travel = std::min(hi[axis] - lo[axis], detail::uniform(rng, 0.45, 0.6) * side);
    double sign = (motion == kRight || motion == kDown) ? 1 : -1;
    double from = detail::uniform(rng, lo[axis], hi[axis] - travel);  // lower end of the path
    start[axis] = sign > 0 ? from : from + travel;
    end[axis] = start[axis] + sign * travel;
  }
  std::vector<std::array<float, 2>> centers(b.frames);
  for (int f = 0; f < b.frames; ++f) {
    double t = b.frames > 1 ? double(f) / (b.frames - 1) : 0;
    centers[f] = {float(start[0] + t * (end[0] - start[0])), float(start[1] + t * (end[1] - start[1]))};
  }
  return centers;
}

}  // namespace

Clip render_clip(const Bucket& bucket, int color, int shape, int motion, uint64_t seed, int fps,
                 double textured_fraction) {
  if (bucket.frames < 1 || bucket.height < 8 || bucket.width < 8)
    fail("bucket ", bucket.name(), " is too small to render: need at least 1 frame of 8x8 pixels");
  if (shape < 0 || shape >= int(shape_names().size()))
    fail("shape index ", shape, " is out of range [0, ", shape_names().size(), ")");
  if (motion < 0 || motion >= int(motion_names().size()))
    fail("motion index ", motion, " is out of range [0, ", motion_names().size(), ")");
  if (fps < 1) fail("fps ", fps, " must be at least 1");
  if (!(textured_fraction >= 0 && textured_fraction <= 1))
    fail("textured_fraction ", textured_fraction, " must lie in [0, 1]");
  const std::array<uint8_t, 3> rgb = color_rgb(color);
  const bool is_image = bucket.frames == 1;
  const int F = bucket.frames, H = bucket.height, W = bucket.width;

  std::mt19937_64 rng(detail::mix({seed, 0}));
  Clip clip;
  clip.fps = fps;
  Truth& truth = clip.truth;
  truth.color = color;
  truth.shape = shape;
  truth.motion = is_image ? int(kStill) : motion;
  truth.background = int(detail::below(rng, background_names().size()));
  truth.textured = detail::uniform(rng) < textured_fraction;
  const double r = detail::uniform(rng, 0.12, 0.22) * std::min(H, W);
  truth.size = float(r);
  truth.centers = plan_path(bucket, shape, truth.motion, r, rng);
  const std::vector<double> bg = render_background(truth, H, W, rng);

  clip.pixels = torch::empty({F, H, W, 3}, torch::kUInt8);
  uint8_t* out = clip.pixels.data_ptr<uint8_t>();
  const std::array<double, 4> ext = extent(shape, r);
  for (int f = 0; f < F; ++f) {
    const double cx = truth.centers[f][0], cy = truth.centers[f][1];
    // Only pixels overlapping the shape's box need coverage; the rest is background.
    const int x0 = std::max(0, int(std::floor(cx - ext[0]))), x1 = std::min(W - 1, int(std::floor(cx + ext[1])));
    const int y0 = std::max(0, int(std::floor(cy - ext[2]))), y1 = std::min(H - 1, int(std::floor(cy + ext[3])));
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        int covered = 0;
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1) {
          for (int sy = 0; sy < kSuper; ++sy)
            for (int sx = 0; sx < kSuper; ++sx)
              covered += inside(shape, x + (sx + 0.5) / kSuper - cx, y + (sy + 0.5) / kSuper - cy, r);
        }
        const double c = double(covered) / (kSuper * kSuper), level = bg[size_t(y) * W + x];
        uint8_t* px = out + ((size_t(f) * H + y) * W + x) * 3;
        for (int ch = 0; ch < 3; ++ch)
          px[ch] = uint8_t(std::lround(std::clamp((1 - c) * level + c * rgb[ch], 0.0, 255.0)));
      }
    }
  }

  std::mt19937_64 caption_rng(detail::mix({seed, 1}));
  clip.caption = make_caption(truth, is_image, caption_rng, std::min(H, W));
  return clip;
}

}  // namespace reel::data
