// Scores generated clips of the synthetic dataset: finds the one coloured object on its neutral
// background and reports its colour, shape and motion, to compare with the prompt's.
//
// The dataset: one object (circle, square or triangle) of a palette colour, moving left,
// right, up or down, or still, on a neutral (black, grey or white-ish, possibly lightly
// textured with low-amplitude noise or stripes) background. Clips are tiny (8 frames of 16x16,
// 1-frame images too) and generated ones are noisy and blurry, so every step is robust:
//
//  1. Background: per frame, the per-channel median of the border pixels, b (3).
//  2. Objectness of a pixel p: chroma(p - b) = max_c(p_c - b_c) - min_c(p_c - b_c). Any neutral
//     change (stripes, brightness texture, a grey or white background) has chroma 0, so this is
//     both "differs from the background" and "is saturated". The noise floor is
//     max(min_chroma, noise_factor * median objectness of border pixels + 10); a pixel is object
//     when its objectness exceeds max(floor, relative_threshold * peak), peak being the 75th
//     percentile of the objectness above the floor (the object's interior).
//  3. Per frame, the largest 8-connected object component is the object (stray pixels, split
//     blobs and speckle are dropped); a frame whose component is smaller than
//     min_object_pixels has no object.
//  4. Colour: the palette entry nearest in hue to the mean chroma vector p - mean(p) of the
//     object pixels (weighted by objectness^2); hue survives blurring into a neutral background,
//     which only shortens that vector. Luminance breaks near-ties (distance = hue angle in
//     radians + 0.2 * |luma difference| / 255).
//  5. Soft mask per frame: the component grown by one pixel, each pixel weighted by the
//     projection of p - b on the object's mean colour difference from the background, less the
//     background's spread along it. Under anti-aliasing or blur that weight is proportional to
//     the pixel's coverage, and it keeps the full-resolution luma edges of 4:2:0 video.
//  6. Centre per frame: the soft mask's centroid. Motion: Theil-Sen (median of pairwise slopes)
//     line fit of x(t) and y(t); (dx, dy) is the fitted displacement over the clip; still when
//     both are within motion_threshold_px * max(1, min(H, W) / 16), else the direction of the
//     larger axis.
//  7. Shape from rotation- and scale-invariant complex moments of the soft mask,
//     c_pq = E[(z - mean)^p conj(z - mean)^q] with z = x + iy: three-fold asymmetry
//     |c_30| / c_11^1.5 (triangle ~0.75; circle and square 0, being centrally symmetric) and
//     four-fold anisotropy |c_40| / c_11^2 (square ~0.55; circle 0; triangle ~0.05), medians
//     over the frames where the object has min_shape_pixels and does not touch the image
//     border (where it always does, over all of them). Moments of the soft
//     mask stay reliable down to 2-px radii, where bounding-box fill ratios are dominated by
//     the pixel grid. Triangle above trifold_threshold, else square above fourfold_threshold,
//     else circle.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

namespace reel::trainer {

constexpr int kShapeCircle = 0, kShapeSquare = 1, kShapeTriangle = 2;
constexpr int kMotionLeft = 0, kMotionRight = 1, kMotionUp = 2, kMotionDown = 3, kMotionStill = 4;

struct ClipAnalysis {
  bool found = false;  // an object was detected
  int color = -1;      // index into the palette (-1 when not found)
  int shape = -1;      // kShape*: 0 circle, 1 square, 2 triangle (-1: fewer than min_shape_pixels pixels)
  int motion = -1;     // kMotion*: 0 left, 1 right, 2 up, 3 down, 4 still (a 1-frame clip is still, as the
                       // dataset records images; -1 when the object shows in fewer than 2 frames)
  float dx = 0, dy = 0;  // fitted centroid displacement first -> last frame, pixels (x right, y down)
  // Per frame (x, y) centroid in pixels, pixel column x spanning [x, x + 1) as in data/synth.h
  // (so a pixel's centre is x + 0.5); a frame without the object repeats the centre of the
  // nearest frame with it. Empty when not found.
  std::vector<std::array<float, 2>> centers;
};

// Thresholds of the method above; the defaults suit 0-255 clips of 16x16 and larger.
struct AnalyzeOptions {
  float min_chroma = 30;           // objectness floor on a clean background (0-255 units)
  float noise_factor = 3;          // floor multiple of the background's median objectness
  float relative_threshold = 0.5;  // object pixels reach this fraction of the peak objectness
  int min_object_pixels = 3;       // smaller components are noise, not an object
  int min_shape_pixels = 6;        // frames with a smaller object do not vote on the shape
  float motion_threshold_px = 1.5; // fitted displacement that counts as motion, per 16 px of frame
  // Shape decision (step 7): triangle above this three-fold asymmetry, else square above this
  // four-fold anisotropy, else circle. Sharp shapes sit far beyond (triangle ~0.75, square
  // ~0.55); blur (generated clips, 4:2:0 video of 2-px objects) pulls both towards 0.
  float trifold_threshold = 0.18;
  float fourfold_threshold = 0.22;
};

// frames: uint8 (F, H, W, 3) RGB (or (H, W, 3) for one image), H, W >= 3. palette: the RGB of
// each colour index (the trainer passes the dataset's palette); at least one entry.
// Throws UserError on a wrong tensor or an empty palette. Thread-safe, no state.
ClipAnalysis analyze_clip(const torch::Tensor& frames, const std::vector<std::array<uint8_t, 3>>& palette,
                          const AnalyzeOptions& options = {});

}  // namespace reel::trainer
