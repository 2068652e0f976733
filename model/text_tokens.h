// The text conditioning a video model cross-attends to: token features plus a padding mask.
#pragma once

#include <torch/torch.h>

namespace reel::model {

struct TextTokens {
  torch::Tensor tokens;  // float (B, L, D); values at padded positions are finite but meaningless
  torch::Tensor mask;    // bool (B, L), true = real token; every row has at least one true
};

}  // namespace reel::model
