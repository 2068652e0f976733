// The seam through which a parallelize step (parallel/tensor_parallel.h) runs a layer's heads or
// hidden units on several ranks without the layer knowing: functions applied to the layer's input,
// to its output and, for cross-attention, to the context it attends to. Empty functions (the
// default) leave the tensor as it is.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace reel::model {

struct ParallelRegion {
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  Fn enter;    // on the input, before the first projection
  Fn exit;     // on the output, after the last projection
  Fn context;  // cross-attention only: on the context, before its K/V projection

  static torch::Tensor apply(const Fn& f, const torch::Tensor& x) { return f ? f(x) : x; }
};

}  // namespace reel::model
