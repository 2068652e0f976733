// Activation checkpointing: run a function without keeping its intermediate activations, and run
// it again in backward to get them (Chen et al. 2016; Movie Gen checkpoints every block). Costs one
// more forward of the function per backward; saves everything it would have stored for backward
// but its inputs.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace reel::parallel {

using CheckpointedFn = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;

// fn(inputs), with fn's activations dropped after forward and recomputed in backward. Gradients
// reach every input that requires them, and every leaf (parameter) fn uses, as without
// checkpointing. fn must be deterministic (same output for the same inputs and parameters) and
// must stay callable until backward has run. Outside grad mode this is fn(inputs).
torch::Tensor checkpoint(const CheckpointedFn& fn, const std::vector<torch::Tensor>& inputs);

}  // namespace reel::parallel
