// Starting from another run's weights (see init_from.h).
#include "trainer/init_from.h"

#include <map>
#include <set>

#include "common/error.h"

namespace reel::trainer {
namespace {

constexpr const char* kModelPrefix = "model/";

// "transformer.pos_embed.t" -> 't', and the same for h and w; 0 for any other name.
char position_axis(const std::string& name) {
  const std::string stem = "pos_embed.";
  const size_t at = name.rfind(stem);
  if (at == std::string::npos || at + stem.size() + 1 != name.size()) return 0;
  const char axis = name.back();
  return axis == 't' || axis == 'h' || axis == 'w' ? axis : 0;
}

}  // namespace

torch::Tensor resize_position_table(const torch::Tensor& table, int64_t m, bool temporal) {
  REEL_CHECK(table.dim() == 2 && table.size(0) >= 1 && m >= 1, "position table ", table.sizes(), " -> ", m, " rows");
  const int64_t n = table.size(0);
  if (temporal) {
    if (m <= n) return table.narrow(0, 0, m).clone();
    return torch::cat({table, table.narrow(0, n - 1, 1).expand({m - n, table.size(1)})}).contiguous();
  }
  // Row i of m sits at (i + 0.5) / m of the field of view, between old rows at (j + 0.5) / n.
  torch::Tensor out = torch::empty({m, table.size(1)}, table.options());
  for (int64_t i = 0; i < m; ++i) {
    const double x = std::clamp((static_cast<double>(i) + 0.5) * static_cast<double>(n) / static_cast<double>(m) - 0.5,
                                0.0, static_cast<double>(n - 1));
    const int64_t lo = static_cast<int64_t>(x), hi = std::min(lo + 1, n - 1);
    const double w = x - static_cast<double>(lo);
    out[i] = table[lo] * (1 - w) + table[hi] * w;
  }
  return out;
}

InitReport init_from_checkpoint(torch::nn::Module& model, const Checkpoint& ckpt) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : model.named_parameters()) targets[p.key()] = p.value();
  for (const auto& b : model.named_buffers()) targets[b.key()] = b.value();

  InitReport report;
  std::map<std::string, torch::Tensor> values;  // name -> what it becomes (checked before any copy)
  std::string refused;
  for (const auto& [name, target] : targets) {
    auto it = ckpt.tensors.find(kModelPrefix + name);
    if (it == ckpt.tensors.end()) {
      report.fresh.push_back(name);
      continue;
    }
    const torch::Tensor& source = it->second;
    if (source.sizes() == target.sizes()) {
      values[name] = source;
      report.copied.push_back(name);
    } else if (const char axis = position_axis(name);
               axis != 0 && source.dim() == 2 && target.dim() == 2 && source.size(1) == target.size(1)) {
      values[name] = resize_position_table(source.to(torch::kFloat64), target.size(0), axis == 't');
      report.resampled.push_back(name);
    } else {
      refused += cat("\n  ", kModelPrefix, name, ": checkpoint ", source.sizes(), " vs model ", target.sizes());
    }
  }
  if (!refused.empty()) {
    fail(ckpt.source, ": cannot start from this checkpoint (init_from): tensors whose shape changed, and only the "
         "position tables (pos_embed.t/h/w) may change length between stages:", refused,
         "\nkeep those sizes in the recipe, or start without init_from");
  }
  for (auto& [name, value] : values) targets.at(name).copy_(value);
  for (const auto& [name, tensor] : ckpt.tensors) {
    const std::string stem = name.substr(std::min(name.size(), std::string(kModelPrefix).size()));
    if (name.rfind(kModelPrefix, 0) == 0 && !targets.count(stem)) report.ignored.push_back(stem);
  }
  return report;
}

int64_t load_text_encoder_weights(torch::nn::Module& model, const std::string& slot, const Checkpoint& ckpt) {
  torch::NoGradGuard no_grad;
  const std::string prefix = "text." + slot + ".encoder.";
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& p : model.named_parameters()) {
    if (p.key().rfind(prefix, 0) != 0) continue;
    auto it = ckpt.tensors.find(kModelPrefix + p.key());
    if (it == ckpt.tensors.end())
      fail(ckpt.source, ": text slot '", slot, "' weights: the checkpoint has no ", kModelPrefix, p.key(),
           "; point model.text_encoders[].weights at a checkpoint whose model has a slot '", slot,
           "' of the same type and sizes");
    if (it->second.sizes() != p.value().sizes())
      fail(ckpt.source, ": text slot '", slot, "' weights: ", kModelPrefix, p.key(), " is ", it->second.sizes(),
           " there but ", p.value().sizes(), " in this model; give the slot the sizes it was trained with");
    copies.emplace_back(p.value(), it->second);
  }
  REEL_CHECK(!copies.empty(), "model has no text slot '", slot, "'");
  for (auto& [target, source] : copies) target.copy_(source);
  return static_cast<int64_t>(copies.size());
}

}  // namespace reel::trainer
