// How the autograd collectives (collectives.cpp, context_parallel.cpp) keep their communicator in
// an autograd context: as an integer, since saved_data holds IValues. The group must outlive the
// backward pass.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "parallel/communicator.h"

namespace reel::parallel::detail {

inline void keep_group(torch::autograd::AutogradContext* ctx, Communicator& group) {
  ctx->saved_data["group"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(&group));
}

inline Communicator& group_of(torch::autograd::AutogradContext* ctx) {
  return *reinterpret_cast<Communicator*>(static_cast<intptr_t>(ctx->saved_data["group"].toInt()));
}

}  // namespace reel::parallel::detail
