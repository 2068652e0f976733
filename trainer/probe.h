// The motion probe: what a text-to-video checkpoint predicts at the start of sampling, per
// motion word. A clip's layout is decided in the first sampler steps, from the model's
// prediction of the clean clip at t near 0; a model that will draw motion must already put the
// object at different places in different frames there, in the prompt's direction.
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/sampler.h"

namespace reel::trainer {

struct ProbeOptions {
  double t = 0;            // flow time of the prediction, in [0, 1)
  int color = 0;           // palette index (data::color_names())
  int shape = 0;           // data::shape_names()
  int noises = 32;         // fixed noises (seeds seed, seed+1, ...) the prediction is averaged over
  uint64_t seed = 1000;
  data::Bucket bucket;     // pixel shape
  int64_t fps = 8;
};

// Per frame, the centroid {x, y} in pixels of `color` in uint8 frames (F, H, W, 3): each pixel
// weighs its colour difference from the frame's median pixel, projected on the colour's
// direction away from grey and clipped at 0 (grey backgrounds, textured or not, weigh nothing).
std::vector<std::array<float, 2>> colour_centroids(const torch::Tensor& frames, int color);

// For each motion (data::motion_names()) the canonical prompt of colour x shape x motion: the
// predicted clean clip x0 + (1 - t) v(xt, t) at xt = x0 (noise), averaged over the noises and
// decoded, and its colour centroid per frame; plus the RMS difference (model space, same noise)
// of the predictions between prompts that differ in motion or in colour ("left" vs the colour
// two places on in the palette). Returns JSON:
// {"t", "color", "shape", "noises", "motions": {name: {"x": [F], "y": [F], "dx", "dy"}},
//  "rms": {"left_right", "left_up", "left_still", "up_down", "colour_swap"},
//  "attention": {"tokens", "uniform_entropy": log(tokens), "entropy": [block][head]}}: the mean
// entropy of each block's self-attention weights in the colour-swapped prediction; near
// uniform_entropy, a block only averages over the clip and cannot place one token by another.
nlohmann::json probe_motion(InferenceModel& m, const ProbeOptions& o);

}  // namespace reel::trainer
