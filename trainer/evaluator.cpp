// Clip evaluator: detects the synthetic dataset's coloured object and names its colour, shape
// and motion (the method is documented in evaluator.h).
#include "trainer/evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"

namespace reel::trainer {
namespace {

// q-quantile (0..1) of v by partial sort; v must not be empty.
float quantile(std::vector<float> v, double q) {
  REEL_CHECK(!v.empty(), "quantile of an empty set");
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

float luma(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

// A clip as float pixels with per-frame background and per-pixel objectness.
struct Clip {
  int frames = 0, height = 0, width = 0;
  std::vector<float> rgb;                         // (F, H, W, 3)
  std::vector<std::array<float, 3>> background;  // (F, 3): median border colour
  std::vector<float> score;                       // (F, H, W): chroma(p - background)

  const float* at(int f, int i) const { return &rgb[(static_cast<size_t>(f) * height * width + i) * 3]; }  // (3)
  bool on_border(int y, int x) const { return y == 0 || x == 0 || y == height - 1 || x == width - 1; }
};

Clip load(const torch::Tensor& frames) {
  Clip clip;
  const torch::Tensor t = frames.to(torch::kCPU).contiguous();  // (F, H, W, 3) uint8
  clip.frames = static_cast<int>(t.size(0));
  clip.height = static_cast<int>(t.size(1));
  clip.width = static_cast<int>(t.size(2));
  const uint8_t* src = t.data_ptr<uint8_t>();
  clip.rgb.assign(src, src + t.numel());
  const size_t plane = static_cast<size_t>(clip.height) * clip.width;
  clip.score.resize(clip.frames * plane);
  for (int f = 0; f < clip.frames; ++f) {
    std::array<std::vector<float>, 3> border;
    for (int y = 0; y < clip.height; ++y) {
      for (int x = 0; x < clip.width; ++x) {
        if (!clip.on_border(y, x)) continue;
        for (int c = 0; c < 3; ++c) border[c].push_back(clip.at(f, y * clip.width + x)[c]);
      }
    }
    std::array<float, 3> bg{};
    for (int c = 0; c < 3; ++c) bg[c] = quantile(border[c], 0.5);
    clip.background.push_back(bg);
    for (size_t i = 0; i < plane; ++i) {
      const float* p = clip.at(f, static_cast<int>(i));
      const float d0 = p[0] - bg[0], d1 = p[1] - bg[1], d2 = p[2] - bg[2];
      clip.score[f * plane + i] = std::max({d0, d1, d2}) - std::min({d0, d1, d2});
    }
  }
  return clip;
}

// Pixel indices (y * W + x) of the largest 8-connected component of `mask` (H * W); ties go to
// the component with the larger total score.
std::vector<int> largest_component(const std::vector<uint8_t>& mask, const float* score, int h, int w) {
  std::vector<uint8_t> seen(mask.size(), 0);
  std::vector<int> best, current, stack;
  float best_mass = -1;
  for (int start = 0; start < h * w; ++start) {
    if (!mask[start] || seen[start]) continue;
    current.clear();
    stack.assign(1, start);
    seen[start] = 1;
    float mass = 0;
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      current.push_back(i);
      mass += score[i];
      const int y = i / w, x = i % w;
      for (int ny = std::max(0, y - 1); ny <= std::min(h - 1, y + 1); ++ny) {
        for (int nx = std::max(0, x - 1); nx <= std::min(w - 1, x + 1); ++nx) {
          const int j = ny * w + nx;
          if (mask[j] && !seen[j]) {
            seen[j] = 1;
            stack.push_back(j);
          }
        }
      }
    }
    if (current.size() > best.size() || (current.size() == best.size() && mass > best_mass)) {
      best = current;
      best_mass = mass;
    }
  }
  return best;
}

// Rotation- and scale-invariant shape descriptors of an object from its soft mask (weights
// proportional to how much of each pixel the object covers), from the complex moments
// c_pq = E[(z - mean)^p conj(z - mean)^q], z = x + iy:
//   trifold = |c_30| / c_11^1.5  (three-fold asymmetry: triangle ~0.8; circle, square 0)
//   fourfold = |c_40| / c_11^2   (four-fold anisotropy: square ~0.55; circle 0, triangle ~0.05)
struct ShapeMoments {
  float trifold = 0, fourfold = 0;
};

ShapeMoments shape_moments(const std::vector<std::array<float, 3>>& points) {  // (x, y, weight)
  double m = 0, mx = 0, my = 0;
  for (const auto& p : points) m += p[2], mx += p[2] * p[0], my += p[2] * p[1];
  mx /= m, my /= m;
  double m20 = 0, m02 = 0, m30 = 0, m12 = 0, m21 = 0, m03 = 0, m40 = 0, m04 = 0, m22 = 0, m31 = 0, m13 = 0;
  for (const auto& p : points) {
    const double x = p[0] - mx, y = p[1] - my, w = p[2] / m;
    const double xx = x * x, yy = y * y;
    m20 += w * xx, m02 += w * yy;
    m30 += w * xx * x, m12 += w * x * yy, m21 += w * xx * y, m03 += w * yy * y;
    m40 += w * xx * xx, m04 += w * yy * yy, m22 += w * xx * yy, m31 += w * xx * x * y, m13 += w * x * yy * y;
  }
  const double c11 = m20 + m02;
  ShapeMoments out;
  if (c11 <= 1e-9) return out;
  out.trifold = static_cast<float>(std::hypot(m30 - 3 * m12, 3 * m21 - m03) / std::pow(c11, 1.5));
  out.fourfold = static_cast<float>(std::hypot(m40 + m04 - 6 * m22, 4 * (m31 - m13)) / (c11 * c11));
  return out;
}

int classify_shape(const ShapeMoments& s, const AnalyzeOptions& options) {
  if (s.trifold > options.trifold_threshold) return kShapeTriangle;
  return s.fourfold > options.fourfold_threshold ? kShapeSquare : kShapeCircle;
}

// Theil-Sen slope of v over t: the median of the pairwise slopes.
float theil_sen_slope(const std::vector<float>& t, const std::vector<float>& v) {
  std::vector<float> slopes;
  for (size_t i = 0; i < t.size(); ++i) {
    for (size_t j = i + 1; j < t.size(); ++j) slopes.push_back((v[j] - v[i]) / (t[j] - t[i]));
  }
  return quantile(slopes, 0.5);
}

// Palette index nearest in hue (angle of the chroma vector p - mean(p)), luminance breaking ties.
int nearest_color(const std::array<double, 3>& chroma, double object_luma,
                  const std::vector<std::array<uint8_t, 3>>& palette) {
  const double norm = std::sqrt(chroma[0] * chroma[0] + chroma[1] * chroma[1] + chroma[2] * chroma[2]);
  int best = 0;
  double best_d = std::numeric_limits<double>::max();
  for (size_t i = 0; i < palette.size(); ++i) {
    const double r = palette[i][0], g = palette[i][1], b = palette[i][2], m = (r + g + b) / 3;
    const double q[3] = {r - m, g - m, b - m};
    const double qn = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
    double angle = M_PI;  // a grey palette entry or a grey object: no hue to compare
    if (norm > 1e-6 && qn > 1e-6) {
      const double cosine = (chroma[0] * q[0] + chroma[1] * q[1] + chroma[2] * q[2]) / (norm * qn);
      angle = std::acos(std::clamp(cosine, -1.0, 1.0));
    }
    const double d = angle + 0.2 * std::abs(object_luma - luma(r, g, b)) / 255.0;
    if (d < best_d) best_d = d, best = static_cast<int>(i);
  }
  return best;
}

// The object's soft mask in frame f: its component grown by one pixel (keeping the
// anti-aliased rim), each pixel weighted by the projection of (p - background) on the unit
// colour difference `direction` of the object, less `noise`. Under linear blending that
// projection is proportional to how much of the pixel the object covers, and unlike chroma it
// keeps the full-resolution luma edges that 4:2:0 video keeps. Points are (x, y, weight) with
// pixel x spanning [x, x + 1).
std::vector<std::array<float, 3>> soft_mask(const Clip& clip, int f, const std::vector<int>& component,
                                            const std::array<float, 3>& direction, float noise) {
  const int H = clip.height, W = clip.width;
  const std::array<float, 3>& bg = clip.background[f];
  std::vector<uint8_t> taken(static_cast<size_t>(H) * W, 0);
  std::vector<std::array<float, 3>> points;
  for (int i : component) {
    const int y = i / W, x = i % W;
    for (int ny = std::max(0, y - 1); ny <= std::min(H - 1, y + 1); ++ny) {
      for (int nx = std::max(0, x - 1); nx <= std::min(W - 1, x + 1); ++nx) {
        const int j = ny * W + nx;
        if (taken[j]) continue;
        taken[j] = 1;
        const float* p = clip.at(f, j);
        float w = -noise;
        for (int c = 0; c < 3; ++c) w += (p[c] - bg[c]) * direction[c];
        if (w > 0) points.push_back({nx + 0.5f, ny + 0.5f, w});
      }
    }
  }
  // The component itself always counts, whatever the projection says (a safe centroid).
  if (points.empty()) {
    for (int i : component) points.push_back({i % W + 0.5f, i / W + 0.5f, 1.0f});
  }
  return points;
}

bool touches_border(const std::vector<int>& component, int h, int w) {
  for (int i : component) {
    const int y = i / w, x = i % w;
    if (y == 0 || x == 0 || y == h - 1 || x == w - 1) return true;
  }
  return false;
}

// Median shape descriptors over the frames whose object has at least min_pixels pixels,
// preferring frames where it does not touch the image border. False when no frame qualifies.
bool clip_shape(const Clip& clip, const std::vector<std::vector<int>>& objects,
                const std::vector<std::array<float, 3>>& directions, float noise, int min_pixels, ShapeMoments* out) {
  std::vector<int> inside, touching;
  for (int f = 0; f < clip.frames; ++f) {
    if (static_cast<int>(objects[f].size()) < std::max(1, min_pixels)) continue;
    (touches_border(objects[f], clip.height, clip.width) ? touching : inside).push_back(f);
  }
  const std::vector<int>& use = inside.empty() ? touching : inside;
  if (use.empty()) return false;
  std::vector<float> trifold, fourfold;
  for (int f : use) {
    const ShapeMoments m = shape_moments(soft_mask(clip, f, objects[f], directions[f], noise));
    trifold.push_back(m.trifold);
    fourfold.push_back(m.fourfold);
  }
  out->trifold = quantile(trifold, 0.5);
  out->fourfold = quantile(fourfold, 0.5);
  return true;
}

}  // namespace

ClipAnalysis analyze_clip(const torch::Tensor& frames, const std::vector<std::array<uint8_t, 3>>& palette,
                          const AnalyzeOptions& options) {
  if (!frames.defined()) fail("analyze_clip: the frames tensor is undefined");
  const torch::Tensor clip_t = frames.dim() == 3 ? frames.unsqueeze(0) : frames;
  if (clip_t.scalar_type() != torch::kUInt8 || clip_t.dim() != 4 || clip_t.size(3) != 3 || clip_t.size(0) < 1 ||
      clip_t.size(1) < 3 || clip_t.size(2) < 3) {
    fail("analyze_clip: expected uint8 RGB frames (F, H, W, 3) with H, W >= 3, got ", frames.scalar_type(), " ",
         frames.sizes(), "; hint: convert a [0, 1] float clip with (x * 255).round().clamp(0, 255).to(torch::kUInt8)");
  }
  if (palette.empty()) fail("analyze_clip: the palette is empty; pass the dataset's colour RGB values");

  const Clip clip = load(clip_t);
  const int F = clip.frames, H = clip.height, W = clip.width;
  const size_t plane = static_cast<size_t>(H) * W;

  // Noise floor from the border (background) pixels, then the object threshold.
  std::vector<float> border;
  for (int f = 0; f < F; ++f) {
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        if (clip.on_border(y, x)) border.push_back(clip.score[f * plane + y * W + x]);
      }
    }
  }
  const float noise_level = quantile(border, 0.5);
  const float noise_floor = std::max(options.min_chroma, options.noise_factor * noise_level + 10.0f);
  std::vector<float> candidates;
  for (float s : clip.score) {
    if (s > noise_floor) candidates.push_back(s);
  }
  ClipAnalysis out;
  if (static_cast<int>(candidates.size()) < options.min_object_pixels) return out;
  const float threshold = std::max(noise_floor, options.relative_threshold * quantile(candidates, 0.75));

  // The object in each frame: the largest component above the threshold.
  std::vector<std::vector<int>> objects(F);  // per frame, pixel indices y * W + x
  std::vector<uint8_t> mask(plane);
  for (int f = 0; f < F; ++f) {
    const float* score = &clip.score[f * plane];
    for (size_t i = 0; i < plane; ++i) mask[i] = score[i] > threshold;
    objects[f] = largest_component(mask, score, H, W);
    if (static_cast<int>(objects[f].size()) < options.min_object_pixels) objects[f].clear();
  }
  std::vector<int> present;
  for (int f = 0; f < F; ++f) {
    if (!objects[f].empty()) present.push_back(f);
  }
  if (present.empty()) return out;
  out.found = true;

  // Colour: objectness^2-weighted mean chroma vector and luma of the object pixels.
  std::array<double, 3> chroma{};
  double luma_sum = 0, weight_sum = 0;
  for (int f : present) {
    for (int i : objects[f]) {
      const float* p = clip.at(f, i);
      const double w = static_cast<double>(clip.score[f * plane + i]) * clip.score[f * plane + i];
      const double m = (p[0] + p[1] + p[2]) / 3.0;
      for (int c = 0; c < 3; ++c) chroma[c] += w * (p[c] - m);
      luma_sum += w * luma(p[0], p[1], p[2]);
      weight_sum += w;
    }
  }
  out.color = nearest_color(chroma, luma_sum / weight_sum, palette);

  // Soft masks: per frame, the unit mean colour difference of the object from the background,
  // and the spread of the background along it (texture, noise).
  std::vector<std::array<float, 3>> directions(F, std::array<float, 3>{});
  for (int f : present) {
    std::array<double, 3> d{};
    for (int i : objects[f]) {
      const float* p = clip.at(f, i);
      for (int c = 0; c < 3; ++c) d[c] += clip.score[f * plane + i] * (p[c] - clip.background[f][c]);
    }
    const double norm = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (int c = 0; c < 3; ++c) directions[f][c] = static_cast<float>(d[c] / std::max(norm, 1e-9));
  }
  std::vector<float> spread;
  for (int f : present) {
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        if (!clip.on_border(y, x)) continue;
        const float* p = clip.at(f, y * W + x);
        float v = 0;
        for (int c = 0; c < 3; ++c) v += (p[c] - clip.background[f][c]) * directions[f][c];
        spread.push_back(std::abs(v));
      }
    }
  }
  const float soft_noise = quantile(spread, 0.5);

  // Centres, then motion from a robust line fit.
  std::vector<std::array<float, 2>> found_centers(F);
  for (int f : present) {
    double sx = 0, sy = 0, sw = 0;
    for (const auto& p : soft_mask(clip, f, objects[f], directions[f], soft_noise)) {
      sx += p[2] * p[0], sy += p[2] * p[1], sw += p[2];
    }
    found_centers[f] = {static_cast<float>(sx / sw), static_cast<float>(sy / sw)};
  }
  out.centers.resize(F);
  for (int f = 0; f < F; ++f) {
    int nearest = present.front();
    for (int g : present) {
      if (std::abs(g - f) < std::abs(nearest - f)) nearest = g;
    }
    out.centers[f] = found_centers[nearest];
  }
  if (F == 1) {
    out.motion = kMotionStill;  // an image: still, as the dataset records it
  } else if (present.size() >= 2) {
    std::vector<float> t, xs, ys;
    for (int f : present) {
      t.push_back(static_cast<float>(f));
      xs.push_back(found_centers[f][0]);
      ys.push_back(found_centers[f][1]);
    }
    out.dx = theil_sen_slope(t, xs) * static_cast<float>(F - 1);
    out.dy = theil_sen_slope(t, ys) * static_cast<float>(F - 1);
    const float limit = options.motion_threshold_px * std::max(1.0f, std::min(H, W) / 16.0f);
    if (std::max(std::abs(out.dx), std::abs(out.dy)) <= limit) {
      out.motion = kMotionStill;
    } else if (std::abs(out.dx) >= std::abs(out.dy)) {
      out.motion = out.dx < 0 ? kMotionLeft : kMotionRight;
    } else {
      out.motion = out.dy < 0 ? kMotionUp : kMotionDown;
    }
  }

  // Shape: median descriptors over the frames where the object is whole (inside the image).
  ShapeMoments shape;
  if (clip_shape(clip, objects, directions, soft_noise, options.min_shape_pixels, &shape)) {
    out.shape = classify_shape(shape, options);
  }
  return out;
}

}  // namespace reel::trainer
