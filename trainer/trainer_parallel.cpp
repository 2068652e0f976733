// The Trainer's parallelize step (see trainer.h): tensor parallel slicing of the model and its
// resumed state, FSDP sharding of the parameters, Adam state and EMA, and how each block runs.
#include "trainer/trainer.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "parallel/activation_checkpoint.h"
#include "trainer/checkpoint.h"
#include "trainer/fsdp_state.h"
#include "trainer/parallelize.h"
#include "trainer/task.h"

namespace reel::trainer {

// The parallelize step's last part: how each transformer block runs (FSDP outermost, then
// activation checkpointing inside it).
void Trainer::install_block_runner() {
  const bool recompute = recipe_.parallel.activation_checkpointing == "full";
  if (!fsdp_ && !recompute) return;
  model_->transformer->set_block_runner(
      [this, recompute](int64_t i, const std::vector<torch::Tensor>& in, const model::BlockFn& run) {
        auto body = [&] { return recompute ? parallel::checkpoint(run, in) : run(in); };
        return fsdp_ ? fsdp_->run_unit(i, body) : body();
      });
  for (auto& copy : copies_) {  // batch threads (never with FSDP): checkpointing only
    copy->transformer->set_block_runner(
        [](int64_t, const std::vector<torch::Tensor>& in, const model::BlockFn& run) { return parallel::checkpoint(run, in); });
  }
}

void Trainer::shard_model() {
  const TrainerSection& tr = recipe_.trainer;
  parallel::FsdpOptions fo;
  fo.reshard_after_forward = recipe_.parallel.reshard_after_forward;
  // bf16: parameters gathered and gradients accumulated in bf16, reduced into fp32 shards.
  if (tr.dtype == "bf16") fo.param_dtype = torch::kBFloat16;
  // The EMA (a resumed checkpoint's), by parameter name.
  std::map<std::string, torch::Tensor> ema_by_name;
  if (ema_) {
    for (size_t i = 0; i < ema_->names().size(); ++i) ema_by_name[ema_->names()[i]] = ema_->shadow()[i];
  }
  fsdp_ = std::make_unique<parallel::Fsdp>(*model_, model_->block_prefixes(),
                                           mesh_->group(parallel::MeshGroup::kFsdp),
                                           &mesh_->group(parallel::MeshGroup::kReplicate), fo);
  params_ = fsdp_->shards();
  if (tp_) {  // the norm weights, laid out like the shards
    auto named = model_->named_parameters();
    const double whole = 1.0 / tp_->size();
    norm_weights_.clear();
    for (int64_t u = 0; u < fsdp_->num_units(); ++u) {
      norm_weights_.push_back(fsdp_->shard_from_full(u, [&](const std::string& name) {
        return torch::full(named[name].sizes(), tp_plan_.count(name) ? 1.0 : whole, torch::kFloat32);
      }));
    }
  }

  optimizer_ = sharded_adamw(*fsdp_, *model_, *optimizer_, adamw_options(tr));
  std::vector<std::string> ema_names;
  std::vector<torch::Tensor> ema_values;
  for (int64_t u = 0; ema_ && u < fsdp_->num_units(); ++u) {
    ema_names.push_back(cat("fsdp_unit_", u));
    ema_values.push_back(fsdp_->shard_from_full(u, [&](const std::string& name) { return ema_by_name.at(name); }));
  }
  if (ema_) {
    double decay = ema_->decay();
    ema_.emplace(ema_names, ema_values, decay);
  }
}

void Trainer::shard_tensor_parallel() {
  tp_ = &mesh_->group(parallel::MeshGroup::kTp);
  tp_plan_ = apply_tensor_parallel(*model_, *tp_, recipe_.parallel.sequence_parallel);
  torch::NoGradGuard no_grad;
  auto named = model_->named_parameters();
  auto slice = [&](const TensorParallelCut& cut, const torch::Tensor& whole) {
    return tensor_parallel_slice(cut, whole, *tp_);
  };
  for (const auto& [name, cut] : tp_plan_) {
    auto it = optimizer_->state().find(adamw_state_key(named[name]));  // the parameter kept its identity
    if (it != optimizer_->state().end()) {  // a resumed run's moments
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      st.exp_avg(slice(cut, st.exp_avg()));
      st.exp_avg_sq(slice(cut, st.exp_avg_sq()));
      if (st.max_exp_avg_sq().defined()) st.max_exp_avg_sq(slice(cut, st.max_exp_avg_sq()));
    }
    if (ema_) {
      const auto& names = ema_->names();
      const size_t i = std::find(names.begin(), names.end(), name) - names.begin();
      REEL_CHECK(i < names.size(), "tensor parallel: no EMA of '", name, "'");
      ema_->shadow()[i] = slice(cut, ema_->shadow()[i]);
    }
  }
  // The norm weights, per trainable parameter (shard_model lays them out like the shards).
  const double whole = 1.0 / tp_->size();
  for (const auto& p : named) {
    if (p.value().requires_grad()) norm_weights_.push_back(torch::scalar_tensor(tp_plan_.count(p.key()) ? 1.0 : whole));
  }
}

}  // namespace reel::trainer
