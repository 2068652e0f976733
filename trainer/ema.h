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
  // The same over named tensors (FSDP: one master shard per unit).
  Ema(std::vector<std::string> names, const std::vector<torch::Tensor>& values, double decay);

  // ema = d * ema + (1 - d) * param for every parameter, with d = decay_at(step), where step
  // counts the updates made before this one (the trainer's optimizer step).
  void update(const torch::nn::Module& module, int64_t step);
  void update(const std::vector<torch::Tensor>& values, int64_t step);  // in names() order

  // The warmed-up decay min(decay, (1 + step) / (10 + step)): early averages do not drag the
  // random initialization along for ~1 / (1 - decay) steps (0.1 at step 0, 0.5 at step 8).
  double decay_at(int64_t step) const;

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
