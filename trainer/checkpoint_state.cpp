// Module parameters/buffers and AdamW state <-> checkpoint tensors (see trainer/checkpoint.h).
#include "trainer/checkpoint.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/runtime.h"
#include "trainer/internal/checkpoint_util.h"

namespace reel::trainer {
namespace fs = std::filesystem;
using detail::shape_str;
using detail::starts_with;

// ---------------------------------------------------------------------------------------------
// Module and optimizer state.
namespace {

constexpr size_t kListedNames = 20;  // per kind of problem in an error message

std::string source_of(const Checkpoint& ckpt) {
  return ckpt.source.empty() ? std::string("checkpoint (in memory)") : "checkpoint '" + ckpt.source + "'";
}

// "  missing (3): a, b, c\n", at most kListedNames names; "" when `items` is empty.
std::string listing(const char* title, const std::vector<std::string>& items) {
  if (items.empty()) return "";
  std::string s = cat("\n  ", title, " (", items.size(), "): ");
  for (size_t i = 0; i < items.size() && i < kListedNames; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > kListedNames) s += cat(", ... and ", items.size() - kListedNames, " more");
  return s;
}

// The distinct first components of the checkpoint's tensor names, "model/, optim/, rng/".
std::string top_level_prefixes(const Checkpoint& ckpt) {
  std::set<std::string> prefixes;
  for (const auto& [name, t] : ckpt.tensors) prefixes.insert(name.substr(0, name.find('/') + 1));
  std::string s;
  for (const std::string& p : prefixes) s += (s.empty() ? "" : ", ") + p;
  return s.empty() ? "none" : s;
}

std::vector<std::pair<std::string, torch::Tensor>> module_tensors(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    if (p.value().defined()) out.emplace_back(p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    if (b.value().defined()) out.emplace_back(b.key(), b.value());
  }
  return out;
}

torch::Tensor cpu_copy(const torch::Tensor& t) {
  return t.detach().to(t.options().device(torch::kCPU), /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

void load_module_state(torch::nn::Module& module, const Checkpoint& ckpt, const std::string& prefix) {
  auto targets = module_tensors(module);
  std::set<std::string> expected;
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, target] : targets) {
    const std::string key = prefix + name;
    expected.insert(key);
    auto it = ckpt.tensors.find(key);
    if (it == ckpt.tensors.end()) {
      missing.push_back(key);
    } else if (!it->second.defined()) {
      mismatched.push_back(key + ": undefined in the checkpoint");
    } else if (it->second.sizes() != target.sizes()) {
      mismatched.push_back(cat(key, ": checkpoint ", shape_str(it->second.sizes()), " vs model ",
                               shape_str(target.sizes())));
    }
  }
  for (auto it = ckpt.tensors.lower_bound(prefix); it != ckpt.tensors.end() && starts_with(it->first, prefix); ++it) {
    if (expected.count(it->first) == 0) unexpected.push_back(it->first);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string hint = missing.size() == targets.size() && !targets.empty()
                           ? cat("\nnone of the module's tensors is in the checkpoint, whose tensors are under: ",
                                 top_level_prefixes(ckpt), "; check the prefix")
                           : std::string("\nthe checkpoint was written for a different model; check the recipe's "
                                         "model section against the one saved in the checkpoint (meta 'recipe')");
    fail(source_of(ckpt), " does not match the module under prefix '", prefix, "':",
         listing("missing", missing), listing("unexpected", unexpected), listing("shape mismatches", mismatched),
         hint);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(ckpt.tensors.at(prefix + name));
}

void add_module_state(const torch::nn::Module& module, const std::string& prefix, Checkpoint& ckpt) {
  for (const auto& [name, t] : module_tensors(module)) ckpt.tensors[prefix + name] = cpu_copy(t);
}

namespace {

constexpr const char* kAdamWFields[] = {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

// The options of the group holding each parameter the optimizer holds, by state key. Every one
// must be a parameter of `module`.
std::map<compat::OptimizerStateKey, const torch::optim::AdamWOptions*> held_parameters(
    const torch::optim::AdamW& opt, const torch::OrderedDict<std::string, torch::Tensor>& params) {
  std::set<compat::OptimizerStateKey> module_keys;
  for (const auto& p : params) module_keys.insert(adamw_state_key(p.value()));
  std::map<compat::OptimizerStateKey, const torch::optim::AdamWOptions*> held;
  for (const auto& group : opt.param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (const torch::Tensor& p : group.params()) {
      REEL_CHECK(module_keys.count(adamw_state_key(p)) != 0, "the AdamW optimizer holds a ", shape_str(p.sizes()),
                 " tensor that is not a parameter of the module passed with it");
      held[adamw_state_key(p)] = &options;
    }
  }
  return held;
}

}  // namespace

compat::OptimizerStateKey adamw_state_key(const torch::Tensor& param) { return compat::optimizer_state_key(param); }

const torch::optim::AdamWParamState* adamw_param_state(const torch::optim::AdamW& opt, const torch::Tensor& param) {
  auto it = opt.state().find(adamw_state_key(param));
  return it == opt.state().end() ? nullptr : static_cast<const torch::optim::AdamWParamState*>(it->second.get());
}

void add_adamw_entries(const std::string& name, int64_t step, const torch::Tensor& exp_avg,
                       const torch::Tensor& exp_avg_sq, Checkpoint& ckpt) {
  const std::string base = kOptimPrefix + name + "/";
  ckpt.tensors[base + "step"] = torch::scalar_tensor(step, torch::kLong);
  ckpt.tensors[base + "exp_avg"] = cpu_copy(exp_avg);
  ckpt.tensors[base + "exp_avg_sq"] = cpu_copy(exp_avg_sq);
}

void add_adamw_state(const torch::optim::AdamW& opt, const torch::nn::Module& module, Checkpoint& ckpt) {
  auto params = module.named_parameters(/*recurse=*/true);
  held_parameters(opt, params);
  for (const auto& p : params) {
    const torch::optim::AdamWParamState* state = adamw_param_state(opt, p.value());
    if (state == nullptr) continue;
    add_adamw_entries(p.key(), state->step(), state->exp_avg(), state->exp_avg_sq(), ckpt);
    if (state->max_exp_avg_sq().defined()) {
      ckpt.tensors[kOptimPrefix + p.key() + "/max_exp_avg_sq"] = cpu_copy(state->max_exp_avg_sq());
    }
  }
}

void load_adamw_state(torch::optim::AdamW& opt, const torch::nn::Module& module, const Checkpoint& ckpt) {
  auto params = module.named_parameters(/*recurse=*/true);
  auto held = held_parameters(opt, params);

  // "optim/<param>/<field>" -> entries[param][field]
  std::map<std::string, std::map<std::string, torch::Tensor>> entries;
  std::vector<std::string> problems;
  const std::string prefix = kOptimPrefix;
  for (auto it = ckpt.tensors.lower_bound(prefix); it != ckpt.tensors.end() && starts_with(it->first, prefix); ++it) {
    size_t slash = it->first.rfind('/');
    std::string field = it->first.substr(slash + 1);
    bool known = std::find(std::begin(kAdamWFields), std::end(kAdamWFields), field) != std::end(kAdamWFields);
    if (!known || slash <= prefix.size()) {
      problems.push_back(it->first + ": not an AdamW state entry (step, exp_avg, exp_avg_sq, max_exp_avg_sq)");
      continue;
    }
    entries[it->first.substr(prefix.size(), slash - prefix.size())][field] = it->second;
  }

  for (const auto& [name, fields] : entries) {
    const std::string base = prefix + name + "/";
    const torch::Tensor* param = params.find(name);
    if (param == nullptr) {
      problems.push_back(base + "*: the module has no parameter '" + name + "'");
      continue;
    }
    auto options = held.find(adamw_state_key(*param));
    if (options == held.end()) {
      problems.push_back(base + "*: the optimizer does not hold parameter '" + name + "' (frozen?)");
      continue;
    }
    for (const char* required : {"step", "exp_avg", "exp_avg_sq"}) {
      if (fields.count(required) == 0) problems.push_back(base + required + ": missing");
    }
    if (options->second->amsgrad() && fields.count("max_exp_avg_sq") == 0) {
      problems.push_back(base + "max_exp_avg_sq: missing (the optimizer uses amsgrad; the checkpoint's did not)");
    }
    for (const auto& [field, t] : fields) {
      if (!t.defined()) {
        problems.push_back(base + field + ": undefined");
      } else if (field == "step") {
        if (t.scalar_type() != torch::kLong || t.numel() != 1) {
          problems.push_back(cat(base, "step: expected one int64, got ", t.scalar_type(), " ", shape_str(t.sizes())));
        }
      } else if (t.sizes() != param->sizes()) {
        problems.push_back(cat(base, field, ": checkpoint ", shape_str(t.sizes()), " vs model ",
                               shape_str(param->sizes())));
      }
    }
  }
  if (!problems.empty()) {
    fail(source_of(ckpt), ": its AdamW state does not fit the optimizer:", listing("problems", problems),
         "\nthe checkpoint was written for a different model or set of trainable parameters");
  }

  for (const auto& p : params) {
    const auto key = adamw_state_key(p.value());
    auto found = entries.find(p.key());
    if (found == entries.end()) {
      opt.state().erase(key);
      continue;
    }
    const auto& fields = found->second;
    const torch::TensorOptions like = p.value().options();
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(fields.at("step").item<int64_t>());
    state->exp_avg(fields.at("exp_avg").to(like, /*non_blocking=*/false, /*copy=*/true));
    state->exp_avg_sq(fields.at("exp_avg_sq").to(like, /*non_blocking=*/false, /*copy=*/true));
    auto max = fields.find("max_exp_avg_sq");
    if (max != fields.end()) state->max_exp_avg_sq(max->second.to(like, /*non_blocking=*/false, /*copy=*/true));
    opt.state()[key] = std::move(state);
  }
}

}  // namespace reel::trainer
