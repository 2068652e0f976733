// Activation checkpointing (see activation_checkpoint.h).
#include "parallel/activation_checkpoint.h"

#include "common/error.h"

namespace reel::parallel {
namespace {

struct FnHolder : torch::CustomClassHolder {
  explicit FnHolder(CheckpointedFn f) : fn(std::move(f)) {}
  CheckpointedFn fn;
};

// Forward runs fn without recording (autograd::Function runs forward in no-grad mode) and saves
// the inputs; backward re-runs fn on detached copies with recording on and back-propagates
// through that graph (re-entrant), returning the inputs' gradients. Parameter gradients
// accumulate into the parameters during that inner backward.
class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const c10::IValue& holder,
                               at::TensorList inputs) {
    ctx->saved_data["fn"] = holder;
    ctx->save_for_backward(inputs.vec());
    auto fn = c10::static_intrusive_pointer_cast<FnHolder>(holder.toCapsule());
    return fn->fn(inputs.vec());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto fn = c10::static_intrusive_pointer_cast<FnHolder>(ctx->saved_data["fn"].toCapsule());
    torch::autograd::variable_list saved = ctx->get_saved_variables();
    std::vector<torch::Tensor> detached;
    for (const auto& t : saved) {
      torch::Tensor d = t.defined() ? t.detach() : t;
      if (d.defined() && t.requires_grad()) d.requires_grad_(true);
      detached.push_back(d);
    }
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = fn->fn(detached);
    }
    if (out.requires_grad()) torch::autograd::backward({out}, {grad_outputs[0]});
    torch::autograd::variable_list grads = {torch::Tensor()};  // the holder has none
    for (const auto& d : detached) grads.push_back(d.defined() && d.requires_grad() ? d.grad() : torch::Tensor());
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint(const CheckpointedFn& fn, const std::vector<torch::Tensor>& inputs) {
  if (!torch::GradMode::is_enabled()) return fn(inputs);
  c10::IValue holder = c10::IValue::make_capsule(c10::make_intrusive<FnHolder>(fn));
  return CheckpointFunction::apply(holder, at::TensorList(inputs));  // a TensorList: each input is a variable
}

}  // namespace reel::parallel
