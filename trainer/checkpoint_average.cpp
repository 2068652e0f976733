// Model averaging of checkpoints (see checkpoint.h).
#include <string>
#include <vector>

#include "common/error.h"
#include "trainer/checkpoint.h"

namespace reel::trainer {
namespace {

bool averaged(const std::string& name) { return name.rfind("model/", 0) == 0 || name.rfind("ema/", 0) == 0; }

}  // namespace

Checkpoint average_checkpoints(const std::vector<Checkpoint>& inputs) {
  if (inputs.size() < 2) fail("averaging needs at least 2 checkpoints, got ", inputs.size());
  const Checkpoint& first = inputs.front();
  auto source = [](const Checkpoint& c) { return c.source.empty() ? std::string("(in memory)") : c.source; };
  Checkpoint out;
  for (const Checkpoint& c : inputs) out.step = std::max(out.step, c.step);
  for (const auto& [name, tensor] : first.tensors) {
    if (!averaged(name)) continue;
    torch::Tensor sum = tensor.to(torch::kFloat64);
    for (size_t i = 1; i < inputs.size(); ++i) {
      auto it = inputs[i].tensors.find(name);
      if (it == inputs[i].tensors.end()) {
        fail(source(inputs[i]), " has no tensor '", name, "' (", source(first), " has it): average checkpoints of "
             "the same model");
      }
      if (it->second.sizes() != tensor.sizes()) {
        fail("tensor '", name, "' is ", tensor.sizes(), " in ", source(first), " but ", it->second.sizes(), " in ",
             source(inputs[i]), ": average checkpoints of the same model");
      }
      sum += it->second.to(torch::kFloat64);
    }
    // A non-float tensor (a step counter, a mask buffer) is taken from the first checkpoint.
    out.tensors[name] = tensor.is_floating_point()
                            ? (sum / static_cast<double>(inputs.size())).to(tensor.scalar_type())
                            : tensor.clone();
  }
  for (size_t i = 1; i < inputs.size(); ++i) {
    for (const auto& [name, tensor] : inputs[i].tensors) {
      if (averaged(name) && !first.tensors.count(name)) {
        fail(source(inputs[i]), " has tensor '", name, "' but ", source(first),
             " does not: average checkpoints of the same model");
      }
    }
  }
  if (out.tensors.empty()) fail(source(first), " holds no model/ or ema/ tensor to average");
  out.meta = first.meta;
  out.meta.erase("data_position");  // not a point of any one run: it starts a new stage, not a resume
  std::string from;
  for (const Checkpoint& c : inputs) from += (from.empty() ? "" : "\n") + source(c);
  out.meta["averaged_from"] = from;
  return out;
}

}  // namespace reel::trainer
