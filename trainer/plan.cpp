// The planner (see plan.h).
#include "trainer/plan.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "data/shards.h"
#include "model/counts.h"
#include "model/layers.h"
#include "model/text_encoder_types.h"
#include "trainer/task.h"

namespace reel::trainer {
namespace {

namespace fs = std::filesystem;

// Activation elements per token, fitted to Reel's layers (plan.h).
constexpr double kBlockPerD = 16, kBlockPerF = 3.75, kOutsidePerP = 6, kOutsidePerD = 18, kTextLayerPerD = 17;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The clip the plan sizes, in pixels: plan.clip, else the largest frames x area of data.buckets.
std::array<int64_t, 3> plan_clip(const Recipe& r) {
  if (!r.plan.clip.empty()) {
    std::array<int64_t, 3> c{};
    if (std::sscanf(r.plan.clip.c_str(), "%" SCNd64 "x%" SCNd64 "x%" SCNd64, &c[0], &c[1], &c[2]) != 3 || c[0] < 1 || c[1] < 1 || c[2] < 1)
      fail(r.source, ": plan.clip = '", r.plan.clip, "' must be FRAMESxHEIGHTxWIDTH, e.g. 256x768x768");
    return c;
  }
  const BucketsSection& b = r.data.buckets;
  size_t best = 0;
  for (size_t i = 1; i < b.heights.size(); ++i)
    if (b.heights[i] * b.widths[i] > b.heights[best] * b.widths[best]) best = i;
  return {*std::max_element(b.frames.begin(), b.frames.end()), b.heights[best], b.widths[best]};
}

// Per slot: the text tokens a batch is padded to, from the dataset's captions when it exists.
std::vector<int64_t> text_tokens(const Recipe& r, const model::T2VOptions& o) {
  std::vector<int64_t> lens;
  for (const auto& s : o.text) lens.push_back(model::resolved(s.type, s.encoder).max_len + (s.type == "byte" ? 2 : 0));
  std::error_code ec;
  const fs::path train = fs::path(r.data.dir) / "train";
  if (!fs::is_directory(train, ec)) return lens;
  const data::Dataset d = data::Dataset::open(train.string());
  const int64_t group = std::max<int64_t>(1, r.data.batch_size), n = std::min<int64_t>(d.size(), 64 * group);
  if (n == 0) return lens;
  for (size_t i = 0; i < o.text.size(); ++i) {
    const auto& s = o.text[i];
    double sum = 0;
    int64_t groups = 0;
    for (int64_t first = 0; first < n; first += group, ++groups) {
      int64_t longest = 1;
      for (int64_t j = first; j < std::min(n, first + group); ++j) {
        const std::string text = conditioning_text(d.caption(j), d.fps(j));
        longest = std::max(longest, model::token_count(s.type, s.encoder, s.input == "quoted" ? model::quoted_text(text) : text));
      }
      sum += static_cast<double>(longest);
    }
    lens[i] = static_cast<int64_t>(std::llround(sum / static_cast<double>(groups)));
  }
  return lens;
}

double ring_share(int n) { return n > 1 ? static_cast<double>(n - 1) / n : 0.0; }

std::string human(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (std::abs(bytes) >= 1000 && u < 5) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", bytes, units[u]);
  return buf;
}

std::string count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

}  // namespace

const GpuSpec& gpu_spec(const std::string& name) {
  // Dense bf16 peaks of the SXM parts; NVLink 4 at 450 GB/s per direction; Movie Gen's
  // 400 Gb/s RoCE per GPU between nodes.
  static const std::vector<GpuSpec> specs = {{"h100", 989e12, 80e9, 450e9, 50e9, 8},
                                             {"h200", 989e12, 141e9, 450e9, 50e9, 8}};
  for (const auto& s : specs)
    if (s.name == name) return s;
  fail("unknown GPU '", name, "'; known: h100, h200");
}

Plan make_plan(const Recipe& r, int gpus, const std::string& gpu) {
  if (r.model.name != "t2v") fail(r.source, ": reel plan sizes text-to-video models (model.name t2v), not '", r.model.name, "'");
  Plan p;
  p.recipe = r.source;
  p.gpu = gpu_spec(gpu.empty() ? r.plan.gpu : gpu);
  const ParallelSection& par = r.parallel;
  p.dp_replicate = static_cast<int>(par.dp_replicate);
  p.cp = static_cast<int>(par.cp);
  p.tp = static_cast<int>(par.tp);
  const int others = p.dp_replicate * p.cp * p.tp;
  if (gpus <= 0) gpus = par.dp_shard > 0 ? static_cast<int>(par.dp_shard) * others : others;
  if (par.dp_shard > 0 && par.dp_shard * others != gpus)
    fail(r.source, ": parallel.dp_replicate ", par.dp_replicate, " x dp_shard ", par.dp_shard, " x cp ", par.cp,
         " x tp ", par.tp, " is not --gpus ", gpus, "; set parallel.dp_shard=-1 to take the ranks left over");
  if (gpus % others != 0)
    fail(r.source, ": --gpus ", gpus, " is not a multiple of dp_replicate x cp x tp = ", others);
  p.gpus = gpus;
  p.dp_shard = gpus / others;
  const int fsdp = p.dp_shard * p.cp, dp = p.dp_replicate * p.dp_shard;
  p.dtype_bytes = r.trainer.dtype == "bf16" ? 2 : 4;
  const double dtype = static_cast<double>(p.dtype_bytes);

  // Sizes.
  const model::T2VOptions o = t2v_options(r);
  const auto& tr = o.transformer;
  const int64_t d = tr.dim, f = model::resolved_ffn_dim(tr), depth = tr.depth;
  const int64_t values = tr.in_channels * tr.patch[0] * tr.patch[1] * tr.patch[2];
  p.params_transformer = model::video_transformer_param_count(tr);
  p.components.push_back({"transformer", p.params_transformer, true});
  int64_t frozen_params = 0, trained_text = 0;
  for (const auto& s : o.text) {
    const int64_t enc = model::text_encoder_param_count(s.type, s.encoder);
    const int64_t proj = s.encoder.dim * d + d + 2 * d;
    p.components.push_back({"text." + s.name + ".encoder (" + s.type + ")", enc, s.trainable});
    p.components.push_back({"text." + s.name + ".proj+norm", proj, true});
    (s.trainable ? trained_text : frozen_params) += enc;
    trained_text += proj;
  }
  p.params_total = p.params_transformer + trained_text + frozen_params;
  const int64_t block_params = model::video_block_param_count(tr);
  const int64_t trained = p.params_transformer + trained_text;
  const int64_t blocks_total = depth * block_params;

  const auto clip = plan_clip(r);
  p.clip_frames = clip[0];
  p.clip_height = clip[1];
  p.clip_width = clip[2];
  const auto& c = r.plan.compression;
  const int64_t lt = ceil_div(clip[0], c[0]), lh = clip[1] / c[1], lw = clip[2] / c[2];
  p.tokens_per_sample = ceil_div(lt, tr.patch[0]) * (lh / tr.patch[1]) * (lw / tr.patch[2]);
  if (p.tokens_per_sample < 1)
    fail(r.source, ": the plan's clip ", clip[0], "x", clip[1], "x", clip[2], " gives no tokens through compression [",
         c[0], ", ", c[1], ", ", c[2], "] and patch [", tr.patch[0], ", ", tr.patch[1], ", ", tr.patch[2], "]");
  p.text_tokens = text_tokens(r, o);

  // Batch and FLOPs.
  const double micro = r.data.batch_budget > 0
                           ? std::max(1.0, std::floor(static_cast<double>(r.data.batch_budget) /
                                                      static_cast<double>(clip[0] * clip[1] * clip[2])))
                           : static_cast<double>(r.data.batch_size);
  p.samples_per_step = micro * static_cast<double>(r.trainer.grad_accum);
  p.samples_per_rank = micro / dp;
  if (p.samples_per_rank < 1)
    p.warnings.push_back(cat("a micro-batch of ", micro, " samples over ", dp, " dp ranks leaves some ranks without a sample"));
  const model::FlopCount fc = model::t2v_forward_flops(o, p.tokens_per_sample, p.text_tokens);
  p.flops_per_sample = 3 * fc.forward_flops - 2 * fc.frozen_text_flops;
  if (!r.data.text_cache.empty()) p.flops_per_sample -= fc.frozen_text_flops;
  p.flops_per_step = p.flops_per_sample * p.samples_per_step;
  p.flops_per_gpu = p.flops_per_step / gpus;
  // Full activation checkpointing runs each block's forward again in backward.
  p.hardware_flops_per_step =
      p.flops_per_step + (r.parallel.activation_checkpointing == "full" ? fc.block_flops * p.samples_per_step : 0.0);

  // Memory per GPU.
  const double tp = p.tp, cp = p.cp;
  const double trained_here = (static_cast<double>(blocks_total) / tp + static_cast<double>(trained - blocks_total)) / fsdp;
  p.parameter_bytes = 4 * trained_here;
  p.gradient_bytes = 4 * trained_here;
  p.optimizer_bytes = 8 * trained_here;
  p.ema_bytes = r.trainer.ema_decay > 0 ? 4 * trained_here : 0;
  p.state_bytes = p.parameter_bytes + p.gradient_bytes + p.optimizer_bytes + p.ema_bytes;
  if (r.data.text_cache.empty()) p.frozen_bytes = static_cast<double>(frozen_params) * dtype / fsdp;
  if (fsdp > 1) p.gathered_bytes = (2 * dtype + 4) * static_cast<double>(block_params) / tp;

  const double s = p.samples_per_rank, n = static_cast<double>(p.tokens_per_sample) / cp;  // tokens per rank
  double text_len = 0;
  for (int64_t l : p.text_tokens) text_len += static_cast<double>(l);
  const double sp_share = par.sequence_parallel ? 1 / tp : 0.5 + 0.5 / tp;
  const double block_token = kBlockPerD * d * sp_share + kBlockPerF * f / tp;          // per token
  const double block = s * (n * block_token + 2 * text_len * d / tp) +
                       (par.cp_mode == "allgather_kv" && p.cp > 1 ? s * 2 * n * cp * d / tp : 0);
  const double outside = s * n * (kOutsidePerP * values + kOutsidePerD * d);
  double text = 0;
  for (size_t i = 0; i < o.text.size(); ++i)
    if (o.text[i].trainable)
      text += s * static_cast<double>(p.text_tokens[i]) * kTextLayerPerD * o.text[i].encoder.dim * o.text[i].encoder.depth;
  const double none = (depth * block + outside + text) * dtype;
  const double checkpointed = (depth * s * n * d * sp_share + block + outside + text) * dtype;
  p.activation_bytes_none = none;
  p.activation_bytes_checkpointed = checkpointed;
  p.activation_bytes = par.activation_checkpointing == "full" ? checkpointed : none;
  if (p.tp > 1 || p.cp > 1) p.buffer_bytes = s * n * cp * d * dtype;  // a gathered sequence
  p.memory_per_gpu_bytes =
      p.state_bytes + p.frozen_bytes + p.gathered_bytes + p.activation_bytes + p.buffer_bytes;
  if (p.memory_per_gpu_bytes > p.gpu.memory_bytes) {
    p.warnings.push_back(cat("does not fit: ", human(p.memory_per_gpu_bytes), " per GPU > ", human(p.gpu.memory_bytes),
                             " on ", p.gpu.name,
                             par.activation_checkpointing == "full"
                                 ? std::string("; raise tp or cp, or lower the batch")
                                 : cat("; parallel.activation_checkpointing: full would need ",
                                       human(p.memory_per_gpu_bytes - p.activation_bytes + checkpointed))));
  }

  // Communication per GPU per step (bytes sent).
  const double accum = static_cast<double>(r.trainer.grad_accum);
  const double shard_params = static_cast<double>(blocks_total) / tp + static_cast<double>(trained - blocks_total);
  const double gathers = par.reshard_after_forward ? 2 : 1;
  p.fsdp_bytes = accum * ring_share(fsdp) * shard_params * (gathers * dtype + 4);
  p.replicate_bytes = 2 * ring_share(p.dp_replicate) * shard_params / fsdp * 4;
  const double region = s * n * d * dtype;  // one region's activations on this rank
  // Three regions per block (self-attention, cross-attention, FFN), forward and backward, each an
  // all-gather + reduce-scatter (sequence parallel) or an all-reduce: the same bytes.
  p.tp_bytes = accum * depth * 3 * 2 * 2 * ring_share(p.tp) * region;
  p.cp_bytes = accum * depth * 2 * 2 * ring_share(p.cp) * s * n * cp * d / tp * dtype;

  // Time.
  const double peak = p.gpu.peak_flops * (p.dtype_bytes == 2 ? 1.0 : 0.5);
  p.compute_s = p.hardware_flops_per_step / gpus / (peak * kMatmulEfficiency);
  const bool tp_inside = p.tp * p.cp <= p.gpu.gpus_per_node;
  const double fast = tp_inside ? p.gpu.nvlink_bytes_s : p.gpu.network_bytes_s;
  const double overlapped = (p.fsdp_bytes + p.replicate_bytes) / p.gpu.network_bytes_s;
  p.exposed_comm_s = (p.tp_bytes + p.cp_bytes) / fast + std::max(0.0, overlapped - p.compute_s);
  p.predicted_step_s = p.compute_s + p.exposed_comm_s;
  p.predicted_mfu = p.flops_per_gpu / (p.predicted_step_s * p.gpu.peak_flops);
  if (p.exposed_comm_s > p.compute_s)
    p.warnings.push_back(cat("communication-bound: ", p.exposed_comm_s, " s of exposed communication against ", p.compute_s,
                             " s of compute per step; more samples per GPU, or fewer FSDP shards (parallel.dp_replicate) ",
                             "would hide it"));
  return p;
}

std::string plan_json(const Plan& p) {
  nlohmann::json components = nlohmann::json::array();
  for (const auto& c : p.components) components.push_back({{"name", c.name}, {"params", c.params}, {"trained", c.trained}});
  nlohmann::json j = {
      {"recipe", p.recipe},
      {"gpu", p.gpu.name},
      {"gpus", p.gpus},
      {"mesh", {{"dp_replicate", p.dp_replicate}, {"dp_shard", p.dp_shard}, {"cp", p.cp}, {"tp", p.tp}}},
      {"params_total", p.params_total},
      {"params_transformer", p.params_transformer},
      {"components", components},
      {"clip", {p.clip_frames, p.clip_height, p.clip_width}},
      {"tokens_per_sample", p.tokens_per_sample},
      {"text_tokens", p.text_tokens},
      {"samples_per_step", p.samples_per_step},
      {"samples_per_rank", p.samples_per_rank},
      {"flops_per_sample", p.flops_per_sample},
      {"flops_per_step", p.flops_per_step},
      {"flops_per_gpu", p.flops_per_gpu},
      {"hardware_flops_per_step", p.hardware_flops_per_step},
      {"memory_per_gpu_bytes", p.memory_per_gpu_bytes},
      {"memory",
       {{"state", p.state_bytes},
        {"parameters", p.parameter_bytes},
        {"gradients", p.gradient_bytes},
        {"optimizer", p.optimizer_bytes},
        {"ema", p.ema_bytes},
        {"frozen_encoders", p.frozen_bytes},
        {"fsdp_gathered", p.gathered_bytes},
        {"activations", p.activation_bytes},
        {"activations_no_checkpointing", p.activation_bytes_none},
        {"activations_full_checkpointing", p.activation_bytes_checkpointed},
        {"communication_buffers", p.buffer_bytes}}},
      {"communication_bytes_per_step",
       {{"fsdp", p.fsdp_bytes}, {"dp_replicate", p.replicate_bytes}, {"tp", p.tp_bytes}, {"cp", p.cp_bytes}}},
      {"compute_s", p.compute_s},
      {"exposed_comm_s", p.exposed_comm_s},
      {"predicted_step_s", p.predicted_step_s},
      {"predicted_mfu", p.predicted_mfu},
      {"fits", p.memory_per_gpu_bytes <= p.gpu.memory_bytes},
      {"warnings", p.warnings}};
  return j.dump(2) + "\n";
}

std::string plan_text(const Plan& p) {
  std::string out = cat("plan ", p.recipe, " on ", p.gpus, " x ", p.gpu.name, " (dp_replicate ", p.dp_replicate,
                        " x dp_shard ", p.dp_shard, " x cp ", p.cp, " x tp ", p.tp, ")\n");
  out += cat("parameters: ", count(static_cast<double>(p.params_total)), " in all\n");
  for (const auto& c : p.components)
    out += cat("  ", c.name, ": ", count(static_cast<double>(c.params)), c.trained ? "" : " (frozen)", "\n");
  out += cat("sample: clip ", p.clip_frames, "x", p.clip_height, "x", p.clip_width, " px -> ", p.tokens_per_sample,
             " tokens; text tokens per slot:");
  for (int64_t l : p.text_tokens) out += cat(" ", l);
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "\nbatch: %.0f samples per step, %.2f per rank per micro-batch\n"
                "FLOPs: %.3g per sample, %.3g per step, %.3g per GPU (run, with recomputed blocks: %.3g per step)\n",
                p.samples_per_step, p.samples_per_rank, p.flops_per_sample, p.flops_per_step, p.flops_per_gpu,
                p.hardware_flops_per_step);
  out += buf;
  out += cat("memory per GPU: ", human(p.memory_per_gpu_bytes), " of ", human(p.gpu.memory_bytes), "\n",
             "  parameters, gradients, optimizer, EMA (fp32, sharded): ", human(p.state_bytes), " (",
             human(p.parameter_bytes), " + ", human(p.gradient_bytes), " + ", human(p.optimizer_bytes), " + ",
             human(p.ema_bytes), ")\n",
             "  frozen encoders (sharded): ", human(p.frozen_bytes), "\n",
             "  FSDP working copies: ", human(p.gathered_bytes), "\n",
             "  activations: ", human(p.activation_bytes), " (no checkpointing ", human(p.activation_bytes_none),
             ", full ", human(p.activation_bytes_checkpointed), ")\n",
             "  communication buffers: ", human(p.buffer_bytes), "\n",
             "communication per GPU per step: fsdp ", human(p.fsdp_bytes), ", replicas ", human(p.replicate_bytes),
             ", tp ", human(p.tp_bytes), ", cp ", human(p.cp_bytes), "\n");
  std::snprintf(buf, sizeof buf, "predicted step: %.3f s (compute %.3f s at %.0f%% of peak, exposed communication %.3f s), MFU %.1f%%\n",
                p.predicted_step_s, p.compute_s, 100 * kMatmulEfficiency, p.exposed_comm_s, 100 * p.predicted_mfu);
  out += buf;
  for (const auto& w : p.warnings) out += "warning: " + w + "\n";
  return out;
}

}  // namespace reel::trainer
