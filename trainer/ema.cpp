// Exponential moving average of parameters.
#include "trainer/ema.h"

#include <algorithm>

#include "common/error.h"

namespace reel::trainer {

Ema::Ema(const torch::nn::Module& module, double decay) : decay_(decay) {
  REEL_CHECK(decay > 0 && decay < 1, "EMA decay must be in (0, 1), got ", decay);
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters()) {
    names_.push_back(p.key());
    shadow_.push_back(p.value().detach().to(torch::kFloat32).clone());
  }
}

Ema::Ema(std::vector<std::string> names, const std::vector<torch::Tensor>& values, double decay)
    : decay_(decay), names_(std::move(names)) {
  REEL_CHECK(decay > 0 && decay < 1, "EMA decay must be in (0, 1), got ", decay);
  REEL_CHECK(names_.size() == values.size(), "EMA: ", names_.size(), " names for ", values.size(), " tensors");
  torch::NoGradGuard no_grad;
  for (const auto& v : values) shadow_.push_back(v.detach().to(torch::kFloat32).clone());
}

double Ema::decay_at(int64_t step) const {
  REEL_CHECK(step >= 0, "EMA step must be >= 0, got ", step);
  return std::min(decay_, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step)));
}

void Ema::update(const torch::nn::Module& module, int64_t step) { update(module.parameters(), step); }

void Ema::update(const std::vector<torch::Tensor>& values, int64_t step) {
  const double d = decay_at(step);
  torch::NoGradGuard no_grad;
  REEL_CHECK(values.size() == shadow_.size(), "EMA holds ", shadow_.size(), " tensors, got ", values.size());
  for (size_t i = 0; i < shadow_.size(); ++i) {
    shadow_[i].mul_(d).add_(values[i].detach().to(torch::kFloat32), 1.0 - d);
  }
}

void Ema::copy_to(torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters();
  REEL_CHECK(params.size() == shadow_.size(), "EMA holds ", shadow_.size(), " tensors, module has ",
             params.size());
  for (size_t i = 0; i < shadow_.size(); ++i) params[i].value().copy_(shadow_[i]);
}

}  // namespace reel::trainer
