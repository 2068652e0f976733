// Helpers shared by the multi-rank tests: seeded tensors every rank builds alike, and the small
// text-to-video model that tensor and context parallel are checked on against one process.
#pragma once

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/model/model_test_util.h"

namespace reel::testing {

// The same float64 tensor on every rank for the same seed.
inline torch::Tensor seeded(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randn(shape, gen).to(torch::kFloat64);
}

// 2 blocks, 4 heads, FFN width 64, every parameter non-zero.
inline model::T2VModel small_parallel_model() {
  model::T2VOptions o = model::testing::small_options(/*with_text_extras=*/true);
  o.transformer.heads = 4;
  o.transformer.ffn_dim = 64;
  model::T2VModel m(o);
  m->init_weights(11);
  model::testing::perturb_zero_params(*m, 12);
  return m;
}

// One forward (3 samples of 2x4x4 pixels: 8 tokens each) and backward of a fixed weighting of the
// output: the output and every parameter's gradient, by name.
inline std::pair<torch::Tensor, std::map<std::string, torch::Tensor>> run_small_model(model::T2VModel& m) {
  auto gen = at::detail::createCPUGenerator(13);
  torch::Tensor x = torch::randn({3, 3, 2, 4, 4}, gen), t = torch::rand({3}, gen);
  torch::Tensor w = torch::randn({3, 3, 2, 4, 4}, gen);
  std::vector<std::string> captions = {"a red circle moves left", "", "blue square"};
  torch::Tensor out = m->forward(x, t, captions);
  (out * w).sum().backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& p : m->named_parameters()) grads[p.key()] = p.value().grad().clone();
  return {out.detach(), grads};
}

}  // namespace reel::testing
