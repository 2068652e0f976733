// FSDP optimizer state and checkpoint shares (trainer/fsdp_state.h).
#include "trainer/fsdp_state.h"

#include <map>
#include <set>

#include "common/error.h"
#include "trainer/checkpoint.h"

namespace reel::trainer {

std::unique_ptr<torch::optim::AdamW> sharded_adamw(const parallel::Fsdp& fsdp, torch::nn::Module& module,
                                                   const torch::optim::AdamW& whole,
                                                   const torch::optim::AdamWOptions& options) {
  std::map<std::string, const torch::optim::AdamWParamState*> states;
  for (const auto& p : module.named_parameters()) states[p.key()] = adamw_param_state(whole, p.value());
  const std::vector<torch::Tensor>& shards = fsdp.shards();
  auto sharded = std::make_unique<torch::optim::AdamW>(shards, options);
  for (int64_t u = 0; u < fsdp.num_units(); ++u) {
    const std::vector<std::string> names = fsdp.unit_names(u);
    if (names.empty() || states.at(names.front()) == nullptr) continue;  // AdamW steps every parameter together
    auto moment = [&](bool second) {
      return fsdp.shard_from_full(u, [&](const std::string& name) {
        const auto* st = states.at(name);
        REEL_CHECK(st != nullptr, "FSDP: parameter '", name, "' has no AdamW state while others of its unit do");
        return second ? st->exp_avg_sq() : st->exp_avg();
      });
    };
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(states.at(names.front())->step());
    state->exp_avg(moment(false));
    state->exp_avg_sq(moment(true));
    sharded->state()[adamw_state_key(shards[size_t(u)])] = std::move(state);
  }
  return sharded;
}

void add_fsdp_shares(const parallel::Fsdp& fsdp, torch::nn::Module& module, const torch::optim::AdamW& optimizer,
                     const std::string& model_prefix, const std::string& optim_prefix, bool writes,
                     bool writes_whole, ShardedCheckpoint& ckpt) {
  auto named = module.named_parameters();
  const std::vector<torch::Tensor>& shards = fsdp.shards();
  std::set<std::string> sharded;
  for (int64_t u = 0; u < fsdp.num_units(); ++u) {
    const auto* st = adamw_param_state(optimizer, shards[size_t(u)]);
    for (const parallel::Fsdp::ShardSpan& sp : fsdp.shard_spans(u)) {
      sharded.insert(sp.name);
      auto part = [&](const torch::Tensor& shard, const std::string& key) {
        TensorShare s;
        s.dtype = shard.scalar_type();
        s.shape = s.local_shape = named[sp.name].sizes().vec();
        if (writes) {
          s.begin = sp.begin;
          s.end = sp.end;
          s.data = shard.detach().narrow(0, sp.offset, sp.end - sp.begin).to(torch::kCPU).clone();  // a host copy
        }
        ckpt.tensors[key] = s;
      };
      part(shards[size_t(u)], model_prefix + sp.name);
      if (st == nullptr) continue;
      const std::string base = optim_prefix + sp.name + "/";
      part(st->exp_avg(), base + "exp_avg");
      part(st->exp_avg_sq(), base + "exp_avg_sq");
      ckpt.tensors[base + "step"] = whole_share(torch::scalar_tensor(st->step(), torch::kLong), writes_whole);
    }
  }
  for (const auto& p : named) {  // frozen parameters: every rank holds them whole
    if (!sharded.count(p.key())) ckpt.tensors[model_prefix + p.key()] = whole_share(p.value(), writes_whole);
  }
  for (const auto& b : module.named_buffers()) ckpt.tensors[model_prefix + b.key()] = whole_share(b.value(), writes_whole);
}

}  // namespace reel::trainer
