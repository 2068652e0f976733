// Shared helpers for the model tests: small configurations and perturbation of zero-init weights.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <string>

#include "model/t2v.h"
#include "tests/test_util.h"

namespace reel::model::testing {

// A few-thousand-parameter model that runs in milliseconds: dim 32, 2 blocks, one byte slot.
// with_text_extras: the byte n-gram convolution (width 3) and pooled text in adaLN, both
// off by default.
inline T2VOptions small_options(bool with_text_extras = false) {
  T2VOptions o;
  o.transformer.in_channels = 3;
  o.transformer.patch = {1, 2, 2};
  o.transformer.dim = 32;
  o.transformer.depth = 2;
  o.transformer.heads = 4;
  o.transformer.max_grid = {4, 4, 4};
  o.transformer.time_freq_dim = 32;
  TextEncoderSlotOptions slot;
  slot.encoder = TextEncoderOptions{16, 1, 2, 16};
  if (with_text_extras) {
    slot.encoder.ngram = 3;
    o.transformer.pooled_text = true;
  }
  o.text = {slot};
  return o;
}

// Replaces every all-zero parameter (the adaLN-Zero and zero-output layers) with small random
// values, so every path of the model carries signal and gradient.
inline void perturb_zero_params(torch::nn::Module& module, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.abs().max().item<double>() == 0.0) p.copy_(torch::empty(p.sizes()).normal_(0.0, 0.05, gen));
  }
}

using reel::testing::contains;

}  // namespace reel::model::testing
