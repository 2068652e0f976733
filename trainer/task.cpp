// Recipe -> model options, conditioning text, token counts, seed mixing.
#include "trainer/task.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/log.h"

namespace reel::trainer {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

model::T2VOptions t2v_options(const Recipe& r) {
  const ModelSection& m = r.model;
  model::T2VOptions o;
  auto& v = o.transformer;
  v.in_channels = m.in_channels;
  for (int i = 0; i < 3; ++i) v.patch[i] = m.patch[i];
  v.dim = m.dim;
  v.depth = m.depth;
  v.heads = m.heads;
  v.ffn_dim = m.ffn_dim;
  v.time_freq_dim = m.time_freq_dim;
  v.pooled_text = m.pooled_text;
  v.qk_norm = m.qk_norm;
  v.frame_time = m.frame_time;
  v.fractional_positions = m.fractional_positions;
  v.max_grid = {ceil_div(m.max_frames, m.patch[0]), ceil_div(m.max_height, m.patch[1]),
                ceil_div(m.max_width, m.patch[2])};
  for (const TextEncoderSection& e : m.text_encoders) {
    model::TextEncoderSlotOptions slot;
    slot.name = e.name;
    slot.type = e.type;
    slot.encoder = {e.dim, e.depth, e.heads, e.max_len, e.ngram, e.ffn_dim, e.head_dim, e.vocab};
    slot.input = e.input;
    slot.trainable = e.trainable;
    o.text.push_back(slot);
  }
  return o;
}

FlowMatchingOptions flow_options(const Recipe& recipe) {
  FlowMatchingOptions f;
  f.sigma_min = recipe.flow.sigma_min;
  f.t_mean = recipe.flow.t_mean;
  f.t_std = recipe.flow.t_std;
  f.prediction = parse_flow_space(recipe.flow.prediction);
  f.frame_correlation = recipe.flow.frame_correlation;
  f.loss = parse_flow_space(recipe.flow.loss);
  f.temporal_weight = recipe.flow.temporal_weight;
  return f;
}

std::string conditioning_text(const std::string& caption, int64_t fps) {
  if (caption.empty()) return caption;
  return cat("FPS-", fps, " ", caption);
}

std::string patch_width_warning(const Recipe& r) {
  const ModelSection& m = r.model;
  const int64_t values = m.in_channels * m.patch[0] * m.patch[1] * m.patch[2];
  if (values <= m.dim || r.flow.prediction == "data") return "";  // clean data is low-rank; noise is not
  return cat("model.patch = [", m.patch[0], ", ", m.patch[1], ", ", m.patch[2], "] with model.in_channels = ",
             m.in_channels, " gives ", values, " values per token, more than model.dim = ", m.dim,
             ": the model cannot carry the noise in the flow-matching target through, and the loss will stay "
             "high; use flow.prediction: data (the model predicts the clean clip), a smaller patch or a model.dim of at least ",
             values);
}

int64_t video_tokens(const Recipe& r, int64_t frames, int64_t height, int64_t width) {
  const auto& p = r.model.patch;
  return ceil_div(frames, p[0]) * (height / p[1]) * (width / p[2]);  // frames padded by replication
}

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

torch::optim::AdamWOptions adamw_options(const TrainerSection& tr) {
  torch::optim::AdamWOptions adam(tr.lr);
  adam.betas({tr.beta1, tr.beta2}).eps(tr.eps).weight_decay(tr.weight_decay);
  return adam;
}

data::LoaderOptions loader_options(const Recipe& recipe) {
  data::LoaderOptions lo;
  lo.batch_size = static_cast<int>(recipe.data.batch_size);
  lo.seed = static_cast<uint64_t>(recipe.seed);
  lo.workers = static_cast<int>(recipe.data.workers);
  lo.prefetch = static_cast<int>(recipe.data.prefetch);
  lo.image_ratio = recipe.data.image_ratio;
  lo.budget = recipe.data.batch_budget;
  return lo;
}

std::string data_position_json(const data::LoaderPosition& position, const DataSection& data) {
  return nlohmann::json{{"epoch", position.epoch}, {"batch", position.batch}, {"global_batch", data.batch_size},
                        {"batch_budget", data.batch_budget}}
      .dump();
}

data::LoaderPosition parse_data_position(const std::string& text, const DataSection& data, const std::string& path) {
  const nlohmann::json j = nlohmann::json::parse(text);
  data::LoaderPosition start;
  start.epoch = j.at("epoch").get<int64_t>();
  start.batch = j.at("batch").get<int64_t>();
  const int64_t budget = j.value("batch_budget", int64_t(0));
  const int64_t global = j.value("global_batch", data.batch_size);
  if (budget != data.batch_budget || (budget == 0 && global != data.batch_size)) {
    // The position counts batches of the epoch's plan at the old size; that plan does not exist at
    // the new one. A deliberate change (Movie Gen grows or shrinks the batch inside a stage) goes
    // on from the start of the next epoch: the rest of this one is not seen.
    log_warn(path, " was written with data.batch_size = ", global, ", data.batch_budget = ", budget,
             "; the recipe has ", data.batch_size, " and ", data.batch_budget, ": training goes on with the new batch "
             "from the start of epoch ", start.epoch + 1, " (the rest of epoch ", start.epoch, " is skipped)");
    start.epoch += 1;
    start.batch = 0;
  }
  return start;
}

Recipe checkpoint_recipe(const Checkpoint& ckpt, const std::string& path) {
  auto text = ckpt.meta.find("recipe");
  if (text == ckpt.meta.end()) fail(path, ": checkpoint holds no recipe; it was not written by `reel train`");
  return parse_recipe_text(text->second, path + ":recipe", {}, /*check_paths=*/false);
}

}  // namespace reel::trainer
