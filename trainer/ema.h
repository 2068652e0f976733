// Exponential moving average of a module's parameters (the weights the sampler prefers).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace reel::trainer {

class Ema {
 public:
  // Keeps a float32 copy of every parameter of `module` (by name). decay in (0, 1).
  Ema(const torch::nn::Module& module, double decay);

  // ema = decay * ema + (1 - decay) * param, for every parameter.
  void update(const torch::nn::Module& module);

  // Copies the averaged weights into `module`'s parameters.
  void copy_to(torch::nn::Module& module) const;

  double decay() const { return decay_; }
  const std::vector<std::string>& names() const { return names_; }
  std::vector<torch::Tensor>& shadow() { return shadow_; }  // in names() order
  const std::vector<torch::Tensor>& shadow() const { return shadow_; }

 private:
  double decay_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> shadow_;
};

}  // namespace reel::trainer
