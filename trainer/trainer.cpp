// The training loop.
#include "trainer/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/runtime.h"
#include "common/torch_compat.h"
#include "common/test_hooks.h"
#include "data/shards.h"
#include "model/counts.h"
#include "model/registry.h"
#include "model/text_encoder_types.h"
#include "parallel/mpi_communicator.h"
#include "trainer/checkpoint.h"
#include "trainer/preemption.h"
#include "trainer/schedule.h"
#include "trainer/task.h"
#include "trainer/text_encode.h"

namespace reel::trainer {
namespace {

using Clock = std::chrono::steady_clock;

// Switches autocast on `device` to bf16 for the lifetime of the guard when enabled.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, c10::DeviceType device) : enabled_(enabled), device_(device) {
    if (enabled_) compat::set_autocast(device_, true);
  }
  ~AutocastGuard() {
    if (enabled_) compat::set_autocast(device_, false);
  }

 private:
  bool enabled_;
  c10::DeviceType device_;
};

std::vector<std::string> conditioning_texts(const data::Batch& batch) {
  std::vector<std::string> texts;
  for (size_t i = 0; i < batch.captions.size(); ++i) {
    texts.push_back(conditioning_text(batch.captions[i], batch.fps[i].item<int64_t>()));
  }
  return texts;
}

constexpr int kValidationTimes = 8;

}  // namespace

void check_token_split(const Recipe& recipe, const parallel::ParallelDims& dims, const std::vector<data::Bucket>& buckets) {
  const int64_t parts = dims.cp * (recipe.parallel.sequence_parallel ? dims.tp : 1);
  if (parts == 1) return;
  for (const data::Bucket& b : buckets) {
    const int64_t tokens = video_tokens(recipe, b.frames, b.height, b.width);
    if (tokens % parts != 0)
      fail(recipe.source, ": dataset '", recipe.data.dir, "' has bucket ", b.name(), " of ", tokens,
           " tokens, which do not split into parallel.cp x parallel.tp (with sequence_parallel) = ", parts,
           " parts; use a cp and tp that divide every bucket's token count, or a smaller model.patch");
  }
}

ValidationResult validation_loss(model::T2VModel& model, const data::Dataset& val,
                                 const Recipe& recipe, int64_t max_samples) {
  torch::NoGradGuard no_grad;
  bool was_training = model->is_training();
  model->eval();
  const torch::Device device = model->parameters().front().device();  // noise drawn on the CPU, then moved
  ValidationResult result;
  for (int k = 0; k < kValidationTimes; ++k) result.t.push_back((k + 0.5) / kValidationTimes);
  result.loss_at_t.assign(kValidationTimes, 0.0);

  // Evenly spread indices, grouped by bucket (a batch holds one shape).
  int64_t n = std::min<int64_t>(max_samples, val.size());
  std::map<data::Bucket, std::vector<int64_t>> by_bucket;
  for (int64_t i = 0; i < n; ++i) {
    int64_t index = n == val.size() ? i : (i * val.size()) / n;
    by_bucket[val.bucket_of(index)].push_back(index);
  }
  const FlowMatchingOptions flow = flow_options(recipe);
  const int64_t batch = recipe.data.batch_size;
  for (const auto& [bucket, indices] : by_bucket) {
    for (size_t start = 0; start < indices.size(); start += batch) {
      size_t end = std::min(indices.size(), start + batch);
      std::vector<torch::Tensor> x1s, x0s;
      std::vector<std::string> texts;
      for (size_t j = start; j < end; ++j) {
        x1s.push_back(val.read_input(indices[j]));  // float (C, F, H, W): pixels in [-1, 1] or latents
        at::Generator gen = at::detail::createCPUGenerator(mix_seed(recipe.seed + 0x5eed, indices[j]));
        x0s.push_back(sample_noise(x1s.back().sizes(), flow.frame_correlation, gen));
        texts.push_back(conditioning_text(val.caption(indices[j]), val.fps(indices[j])));
      }
      torch::Tensor x1 = torch::stack(x1s).to(device), x0 = torch::stack(x0s).to(device);
      model::TextTokens text = model->encode_text(texts);
      model::TextTokens no_text = model->encode_text(std::vector<std::string>(texts.size()));
      for (int k = 0; k < kValidationTimes; ++k) {
        torch::Tensor t = torch::full({x1.size(0)}, result.t[k], x1.options());
        FlowPoint p = flow_path(x1, x0, t, flow.sigma_min);
        torch::Tensor pred = output_to_velocity(model->forward_with_text(p.xt, t, text), p.xt, t, flow);
        result.loss_at_t[k] += flow_loss_per_sample(pred, p.target).sum().item<double>();
        torch::Tensor pred_uncond = output_to_velocity(model->forward_with_text(p.xt, t, no_text), p.xt, t, flow);
        result.loss_uncond += flow_loss_per_sample(pred_uncond, p.target).sum().item<double>();
      }
      result.samples += x1.size(0);
    }
  }
  double total = 0;
  for (double& l : result.loss_at_t) {
    l /= std::max<int64_t>(1, result.samples);
    total += l;
  }
  result.loss = total / kValidationTimes;
  result.loss_uncond /= static_cast<double>(std::max<int64_t>(1, result.samples) * kValidationTimes);
  if (was_training) model->train();
  return result;
}

Trainer::Trainer(Recipe recipe, bool resume, parallel::Mesh* mesh)
    : recipe_(std::move(recipe)), flow_(flow_options(recipe_)) {
  const TrainerSection& tr = recipe_.trainer;
  if (mesh != nullptr && mesh->world().size() > 1) {
    mesh_ = mesh;
    writer_ = mesh->world().rank() == 0;
    const auto* world = dynamic_cast<const parallel::MpiCommunicator*>(&mesh->world());
    REEL_CHECK(world != nullptr, "checkpoints are written over MPI-IO: the mesh's world must be an MPI communicator");
    MPI_Comm_dup(world->comm(), &save_comm_);
    data_group_ = &mesh->group(parallel::MeshGroup::kDp);
    if (mesh->dims().dp_shard == 1 && mesh->dims().cp == 1 && mesh->dims().dp_replicate > 1) {
      dp_ = std::make_unique<parallel::DataParallel>(mesh->group(parallel::MeshGroup::kReplicate));
    }
  }
  int threads = configure_threads(static_cast<int>(tr.threads));
  threads_ = threads;
  if (tr.device == "cuda") {
    if (!torch::cuda::is_available())
      fail(recipe_.source, ": trainer.device = cuda, but this reel's LibTorch (", TORCH_VERSION, ") sees no CUDA ",
           "device: a CPU-only LibTorch (Debian's libtorch-dev is one) or no GPU visible; build against a CUDA ",
           "LibTorch (README, \"On a GPU\") or set trainer.device=cpu");
    if (mesh_)
      fail(recipe_.source, ": trainer.device = cuda trains in one process on one GPU so far, and this job has ",
           mesh->world().size(), " ranks (the mesh's collectives run over MPI on CPU tensors); run it without ",
           "mpirun or set trainer.device=cpu");
    if (tr.batch_threads > 1)
      fail(recipe_.source, ": trainer.batch_threads = ", tr.batch_threads, " splits micro-batches over CPU ",
           "threads and cannot be combined with trainer.device = cuda; set trainer.batch_threads=1");
    device_ = torch::Device(torch::kCUDA, 0);
  }
  if (const char* step = std::getenv("REEL_TEST_PREEMPT_AT_STEP"); step != nullptr && writer_) {
    test_preempt_step_ = std::stoll(step);
  }
  if (const char* steps = std::getenv("REEL_TEST_NONFINITE_STEPS"); steps != nullptr && writer_) {
    std::stringstream list(steps);
    for (std::string item; std::getline(list, item, ',');) {
      if (!item.empty()) test_nonfinite_steps_.insert(std::stoll(item));
    }
  }

  // Data first: a missing or bad dataset should fail before any model work.
  train_data_ = std::make_shared<const data::Dataset>(data::Dataset::open(recipe_.data.dir + "/train"));
  val_data_ = std::make_shared<const data::Dataset>(data::Dataset::open(recipe_.data.dir + "/val"));

  if (train_data_->latents()) {  // the TAE that decodes them, for the checkpoints (meta latent_tae)
    const std::string manifest = recipe_.data.dir + "/latents.json";
    try {
      latent_tae_ = nlohmann::json::parse(read_file(manifest)).at("tae").get<std::string>();
    } catch (const std::exception& e) {
      fail(recipe_.source, ": dataset '", recipe_.data.dir, "' holds latents but '", manifest, "' does not name ",
           "their TAE (", e.what(), "); it is written by `reel data encode`");
    }
  }
  for (const auto* d : {train_data_.get(), val_data_.get()}) {
    if (d->channels() != recipe_.model.in_channels)
      fail(recipe_.source, ": model.in_channels = ", recipe_.model.in_channels, " but dataset '", d->dir(), "' holds ",
           d->latents() ? cat("latents of ", d->channels(), " channels (`reel data encode`)") : std::string("RGB pixels"),
           "; set model.in_channels=", d->channels());
  }
  const model::ModelSpec& spec = model::find_model(recipe_.model.name);
  model::T2VOptions options = t2v_options(recipe_);
  for (const data::Bucket& b : train_data_->buckets()) {
    auto& v = options.transformer;
    if (b.frames > v.max_grid[0] * v.patch[0] || b.height > v.max_grid[1] * v.patch[1] ||
        b.width > v.max_grid[2] * v.patch[2] || b.height % v.patch[1] || b.width % v.patch[2]) {
      fail(recipe_.source, ": dataset '", recipe_.data.dir, "' has bucket ", b.name(),
           " which model.patch [", v.patch[0], ",", v.patch[1], ",", v.patch[2],
           "] and model.max_frames/max_height/max_width (", recipe_.model.max_frames, "x",
           recipe_.model.max_height, "x", recipe_.model.max_width,
           ") cannot hold; raise the maxima or use a patch whose height and width divide the bucket's");
    }
  }
  if (mesh_) {
    std::vector<data::Bucket> buckets = train_data_->buckets();
    for (const data::Bucket& b : val_data_->buckets()) buckets.push_back(b);
    check_token_split(recipe_, mesh_->dims(), buckets);
  }
  model_ = spec.build(options);
  model_->init_weights(recipe_.seed);
  const std::string checkpoints = recipe_.run.dir + "/checkpoints";
  const bool resuming = resume && (std::filesystem::exists(checkpoints + "/latest") ||
                                   (std::filesystem::exists(checkpoints) && !std::filesystem::is_empty(checkpoints)));
  if (!recipe_.init_from.empty() && !resuming) initialize_from(recipe_.init_from);
  if (!resuming) load_text_weights();
  model_->to(device_);
  model_->train();
  for (const auto& p : model_->named_parameters()) {
    if (p.value().requires_grad()) params_.push_back(p.value());
  }
  if (dp_) dp_->broadcast_parameters(params_);  // replicas start equal whatever their RNG did
  const bool sharded = mesh_ && (mesh_->dims().dp_shard > 1 || mesh_->dims().cp > 1 || mesh_->dims().tp > 1);
  const int64_t batch_threads = tr.batch_threads > 0 ? tr.batch_threads : (sharded || device_.is_cuda() ? 1 : threads);
  if (batch_threads > 1) {
    if (sharded) {
      fail(recipe_.source, ": trainer.batch_threads = ", tr.batch_threads, " cannot be combined with FSDP, ",
           "context or tensor parallel (", mesh_->dims().describe(), "); set trainer.batch_threads=1 or run ",
           "replicas (parallel.dp_shard=1 parallel.cp=1 parallel.tp=1)");
    }
    threads_per_copy_ = std::max<int>(1, threads / static_cast<int>(batch_threads));
    torch::NoGradGuard no_grad;
    for (int64_t c = 1; c < batch_threads; ++c) {
      model::T2VModel copy = spec.build(options);
      copy->train();
      std::vector<torch::Tensor> ps;
      auto source = model_->named_parameters();
      for (const auto& p : copy->named_parameters()) {
        p.value().copy_(source[p.key()]);
        if (p.value().requires_grad()) ps.push_back(p.value());
      }
      copies_.push_back(copy);
      copy_params_.push_back(ps);
    }
  }

  optimizer_ = std::make_unique<torch::optim::AdamW>(params_, adamw_options(tr));
  if (tr.ema_decay > 0) ema_.emplace(*model_, tr.ema_decay);
  plateau_.patience = tr.plateau_patience;
  plateau_.factor = tr.plateau_factor;
  plateau_.threshold = tr.plateau_threshold;
  plateau_.floor = tr.min_lr;

  data::LoaderPosition start;
  make_dirs(recipe_.run.dir);
  if (resuming) {
    start = resume_latest();
  } else if (resume) {
    log_info("--resume: no checkpoint in ", checkpoints, " yet; starting from step 0");
  }

  sync_copies();  // the batch threads' models take the resumed weights
  if (!recipe_.data.text_cache.empty()) {  // checked against the weights the run trains with
    text_cache_ = data::TextCache::open(recipe_.data.text_cache);
    check_text_cache(*text_cache_, model_, recipe_.source);
    std::string slots;
    for (const auto& s : text_cache_->manifest().slots) slots += (slots.empty() ? "" : ", ") + s.name;
    log_info("text cache ", recipe_.data.text_cache, ": ", text_cache_->manifest().strings, " strings stand in for ",
             "the encoder of text slot(s) ", slots);
  }
  // After a resume the loaded (whole) state is cut over tp, then sharded over the fsdp group.
  if (mesh_ && mesh_->dims().tp > 1) shard_tensor_parallel();
  if (mesh_ && mesh_->dims().cp > 1) {
    apply_context_parallel(*model_, mesh_->group(parallel::MeshGroup::kCp), recipe_.parallel.cp_mode);
  }
  if (mesh_ && mesh_->dims().dp_shard * mesh_->dims().cp > 1) shard_model();  // FSDP over dp_shard x cp
  install_block_runner();

  data::LoaderOptions lo = loader_options(recipe_);
  if (data_group_) {  // each data-parallel rank loads its part of every global batch
    lo.batch_size = static_cast<int>(parallel::per_rank_batch(recipe_.data.batch_size, data_group_->size()));
    lo.rank = data_group_->rank();
    lo.world_size = data_group_->size();
  }
  loader_ = std::make_unique<data::Loader>(train_data_, lo, start);

  if (writer_) {
    write_file_atomic(recipe_.run.dir + "/recipe.yaml", to_yaml(recipe_));
    metrics_ = std::make_unique<MetricsLog>(recipe_.run.dir + "/metrics.jsonl");
  }
  matmul_flops_ = measure_matmul_rate(0.5);

  log_info("reel ", version(), " (", git_commit(), ")  threads ", threads, "  matmul ",
           format_si(matmul_flops_), "FLOP/s (", matmul_reference(device_, tr.dtype).label, ")");
  log_info("model ", recipe_.model.name, ": ", parameter_count(), " parameters (formula ",
           spec.param_count(options), ")  data: ", train_data_->size(), " train / ",
           val_data_->size(), " val clips");
  if (mesh_) log_info("mesh: ", mesh_->dims().describe(), " (", mesh_->dims().world_size(), " ranks)");
  if (auto warning = patch_width_warning(recipe_); !warning.empty()) log_warn(warning);
}

double Trainer::measure_matmul_rate(double min_seconds) const {
  const MatmulReference ref = matmul_reference(device_, recipe_.trainer.dtype);
  return measure_matmul_flops(ref.n, min_seconds, device_, ref.dtype);
}

int64_t Trainer::parameter_count() const {
  int64_t n = 0;
  const int64_t tp = tp_ ? tp_->size() : 1;  // a cut weight holds 1/tp of its parameters here
  for (const auto& p : model_->named_parameters()) n += p.value().numel() * (tp_plan_.count(p.key()) ? tp : 1);
  return n;
}

int64_t Trainer::state_bytes() const {
  auto bytes = [](const torch::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; };
  int64_t n = 0;
  for (const auto& p : model_->parameters()) n += bytes(p) + bytes(p.grad());
  for (const auto& group : optimizer_->param_groups()) {
    for (const auto& p : group.params()) {
      auto it = optimizer_->state().find(adamw_state_key(p));
      if (it == optimizer_->state().end()) continue;
      const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
      n += bytes(st.exp_avg()) + bytes(st.exp_avg_sq()) + bytes(st.max_exp_avg_sq());
    }
  }
  if (ema_) {
    for (const auto& t : ema_->shadow()) n += bytes(t);
  }
  return n;
}

double Trainer::step_flops(const data::Batch& batch) const {
  int64_t tokens = video_tokens(recipe_, batch.bucket.frames, batch.bucket.height, batch.bucket.width);
  const model::T2VOptions& options = model_->options();
  std::vector<int64_t> text_lens(options.text.size(), 1);  // the batch's longest, per slot
  for (size_t i = 0; i < options.text.size(); ++i) {
    const auto& slot = options.text[i];
    for (const std::string& c : batch.captions) {
      const std::string text = conditioning_text(c, 10);  // "FPS-NN " in front
      const std::string input = slot.input == "quoted" ? model::quoted_text(text) : text;
      text_lens[i] = std::max(text_lens[i], model::token_count(slot.type, slot.encoder, input));
    }
  }
  model::FlopCount f = model::t2v_forward_flops(options, tokens, text_lens);
  // Each cp rank runs 1/cp of the tokens, each tp rank 1/tp of the blocks' heads and hidden units
  // (the text's K/V projections counted as split over cp too).
  const double tp = mesh_ ? mesh_->dims().tp : 1, cp = mesh_ ? mesh_->dims().cp : 1;
  const double mine = f.forward_flops - f.token_flops * (1 - 1 / cp) - f.block_flops / cp * (1 - 1 / tp);
  double cached = 0;  // encoders a text cache stands in for do not run at all
  if (text_cache_) {
    model::T2VOptions o = options;
    for (auto& slot : o.text) {
      slot.trainable = true;
      for (const auto& c : text_cache_->manifest().slots) slot.trainable = slot.trainable && c.name != slot.name;
    }
    cached = model::t2v_forward_flops(o, tokens, text_lens).frozen_text_flops;
  }
  return (3.0 * mine - 2.0 * f.frozen_text_flops - cached) * static_cast<double>(batch.captions.size());
}

StepStats Trainer::train_step() {
  const TrainerSection& tr = recipe_.trainer;
  auto t0 = Clock::now();
  const double waited0 = parallel::blocked_wait_seconds();
  StepStats s;
  s.lr = scheduled_lr(step_);
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(s.lr);
  }
  optimizer_->zero_grad();
  for (int64_t micro = 0; micro < tr.grad_accum; ++micro) {
    data::Batch batch = loader_->next();  // this rank's part of the global batch
    at::Generator gen = at::detail::createCPUGenerator(mix_seed(mix_seed(recipe_.seed, step_), micro));
    // Dropout, noise and t are drawn for the whole global batch on every rank, which keeps its
    // rows: the same numbers as one process drawing for the whole batch.
    const int64_t b = batch.pixels.size(0);
    const int dp_size = data_group_ ? data_group_->size() : 1, dp_rank = data_group_ ? data_group_->rank() : 0;
    const int64_t global_b = b * dp_size, first = b * dp_rank;
    std::vector<std::string> texts = conditioning_texts(batch);
    torch::Tensor drop = at::rand({global_b}, gen).narrow(0, first, b).contiguous();
    auto dropped = drop.accessor<float, 1>();
    for (int64_t i = 0; i < b; ++i) {
      if (dropped[i] < recipe_.flow.caption_dropout) texts[i].clear();
    }
    std::vector<int64_t> shape = batch.pixels.sizes().vec();
    shape[0] = global_b;
    // Drawn on the CPU whatever the device: the same numbers on every device.
    torch::Tensor x0 = sample_noise(shape, flow_.frame_correlation, gen).narrow(0, first, b).to(device_);
    const double per_frame = recipe_.flow.frame_times;  // t (B, F) when > 0
    torch::Tensor t = (per_frame > 0 ? sample_frame_t(global_b, shape[2], per_frame, flow_, gen) : sample_t(global_b, flow_, gen))
                          .narrow(0, first, b)
                          .to(device_);
    const torch::Tensor x1 = batch.pixels.to(device_);
    FlowPoint p = flow_path(x1, x0, t, flow_.sigma_min);
    model::EncodedText encoded = text_cache_ ? cached_text(*text_cache_, texts) : model::EncodedText{};
    for (auto& [slot, e] : encoded) e = {e.tokens.to(device_), e.mask.to(device_)};
    const double loss = forward_backward(p.xt, t, texts, encoded, p, x1);
    if (fsdp_) fsdp_->finish_backward();  // the gradients reduce-scattered into the shards
    s.loss += loss / tr.grad_accum;  // this rank's; averaged over replicas below
    s.samples += global_b;
    s.tokens += global_b * video_tokens(recipe_, batch.bucket.frames, batch.bucket.height, batch.bucket.width);
    s.flops += step_flops(batch);  // this rank's, against this rank's matmul rate
  }
  if (!copies_.empty()) {  // the batch threads' gradients, summed in thread order
    torch::NoGradGuard no_grad;
    for (auto& ps : copy_params_) {
      for (size_t i = 0; i < ps.size(); ++i) {
        if (!ps[i].grad().defined()) continue;
        if (params_[i].grad().defined()) {
          params_[i].mutable_grad().add_(ps[i].grad());
        } else {
          params_[i].mutable_grad() = ps[i].grad().clone();
        }
        ps[i].mutable_grad().zero_();
      }
    }
  }
  double max_norm = tr.grad_clip > 0 ? tr.grad_clip : std::numeric_limits<double>::infinity();
  if (dp_) {
    s.loss = dp_->average_gradients(params_, s.loss);
  } else if (fsdp_) {
    fsdp_->synchronize();  // HSDP: the shards' gradients averaged over the replicas
    torch::Tensor loss = torch::tensor({s.loss}, torch::kFloat64);
    data_group_->all_reduce(loss, parallel::ReduceOp::kAvg);
    s.loss = loss.item<double>();
  }
  s.grad_norm = clip_gradients(max_norm);
  // The norm is global (every shard, slice and replica) and the loss averaged over the data
  // ranks, so every rank takes the same decision.
  s.skipped = !std::isfinite(s.loss) || !std::isfinite(s.grad_norm);
  if (!s.skipped) {
    optimizer_->step();
    if (fsdp_) fsdp_->after_optimizer_step();
    sync_copies();
    if (ema_) fsdp_ ? ema_->update(params_, step_) : ema_->update(*model_, step_);
  }
  ++step_;
  s.step = step_;
  s.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  s.comm_seconds = parallel::blocked_wait_seconds() - waited0;
  return s;
}

double Trainer::clip_gradients(double max_norm) {
  if (fsdp_) return fsdp_->clip_grad_norm(max_norm, tp_ ? &norm_weights_ : nullptr, tp_);
  if (!tp_) return torch::nn::utils::clip_grad_norm_(params_, max_norm);
  torch::Tensor sq = parallel::grad_square_sum(params_, &norm_weights_);
  tp_->all_reduce(sq, parallel::ReduceOp::kSum);
  return parallel::clip_to_norm(params_, sq, max_norm);
}

void Trainer::sync_copies() {
  torch::NoGradGuard no_grad;
  for (auto& ps : copy_params_) {
    for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(params_[i]);
  }
}

double Trainer::forward_backward(const torch::Tensor& xt, const torch::Tensor& t,
                                 const std::vector<std::string>& texts, const model::EncodedText& encoded,
                                 const FlowPoint& p, const torch::Tensor& x1) {
  const bool bf16 = recipe_.trainer.dtype == "bf16";
  const double accum = static_cast<double>(recipe_.trainer.grad_accum);
  const int64_t b = xt.size(0);
  // Rows [first, first + n) through model m; returns their share of the micro-batch's mean loss.
  auto run = [&](model::T2VModel& m, int64_t first, int64_t n) {
    auto rows = [&](const torch::Tensor& x) { return x.narrow(0, first, n); };
    std::vector<std::string> part(texts.begin() + first, texts.begin() + first + n);
    model::EncodedText encoded_part;
    for (const auto& [slot, e] : encoded) encoded_part[slot] = {rows(e.tokens), rows(e.mask)};
    FlowPoint pp{rows(xt), rows(p.target)};
    torch::Tensor loss;
    {
      AutocastGuard autocast(bf16, device_.type());
      const model::TextTokens text = m->encode_text(part, encoded_part);
      loss = training_loss(m->forward_with_text(pp.xt, rows(t), text), pp, rows(x1), rows(t), flow_);
    }
    const double share = static_cast<double>(n) / static_cast<double>(b);
    if (test_nonfinite_steps_.count(step_ + 1)) loss = loss * std::numeric_limits<double>::quiet_NaN();
    (loss * (share / accum)).backward();
    return loss.item<double>() * share;
  };
  if (copies_.empty()) return run(model_, 0, b);

  const int k = static_cast<int>(copies_.size()) + 1;
  std::vector<double> losses(k, 0.0);
  std::vector<std::exception_ptr> errors(k);
  std::vector<std::thread> workers;
  int64_t first = 0;
  for (int w = 0; w < k; ++w) {
    const int64_t n = b / k + (w < b % k ? 1 : 0);
    if (n == 0) continue;
    model::T2VModel m = w == 0 ? model_ : copies_[w - 1];
    workers.emplace_back([&, w, m, first, n]() mutable {
      try {
        at::set_num_threads(threads_per_copy_);  // this thread's OpenMP team size
        losses[w] = run(m, first, n);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
    first += n;
  }
  for (auto& worker : workers) worker.join();
  at::set_num_threads(threads_);  // the training thread's own, and the default for new threads
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  double total = 0;
  for (double l : losses) total += l;  // in thread order: deterministic
  return total;
}

ValidationResult Trainer::validate() {
  AutocastGuard autocast(recipe_.trainer.dtype == "bf16", device_.type());  // as in training (FSDP holds bf16 parameters)
  return validation_loss(model_, *val_data_, recipe_, recipe_.trainer.val_samples);
}

RunEnd Trainer::run() {
  install_preemption_handlers();
  const TrainerSection& tr = recipe_.trainer;
  log_info("resolved recipe (", recipe_.source, "):\n", to_yaml(recipe_));
  auto start = Clock::now();
  int64_t first_step = step_;
  double loss_sum = 0, norm_sum = 0, seconds = 0, flops = 0;
  int64_t samples = 0, tokens = 0, count = 0;
  int64_t nonfinite = 0;  // skipped steps in a row
  while (step_ < tr.steps) {
    StepStats s = train_step();
    if (s.skipped) {
      ++nonfinite;
      if (writer_) {
        log_warn("step ", s.step, ": loss ", s.loss, ", gradient norm ", s.grad_norm, ": update skipped (",
                 nonfinite, " in a row; the run stops at trainer.max_nonfinite = ", tr.max_nonfinite, ")");
      }
      if (metrics_) metrics_->write({{"step", s.step}, {"skipped", true}, {"lr", s.lr}});
      if (nonfinite >= tr.max_nonfinite) {
        fail("steps ", s.step - nonfinite + 1, "-", s.step, ": ", nonfinite,
             " non-finite losses or gradient norms in a row (trainer.max_nonfinite = ", tr.max_nonfinite,
             "); stopping. The checkpoints in ", recipe_.run.dir, "/checkpoints are intact: resume from the "
             "last one (--resume) with a lower trainer.lr, trainer.grad_clip on, or trainer.dtype=fp32");
      }
    } else {
      nonfinite = 0;
      loss_sum += s.loss;
      norm_sum += s.grad_norm;
      seconds += s.seconds;
      flops += s.flops;
      samples += s.samples;
      tokens += s.tokens;
      ++count;
    }
    bool validate_now = tr.val_every > 0 && (step_ % tr.val_every == 0 || step_ == tr.steps);
    // (a stretch of skipped steps has nothing to average; its checkpoint below is still written)
    bool log_now = count > 0 && (step_ % tr.log_every == 0 || step_ == tr.steps || validate_now);
    if (log_now) {
      double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      double per_step = elapsed / static_cast<double>(step_ - first_step);
      double flops_per_s = flops / seconds;
      nlohmann::json rec = {{"step", step_},
                            {"loss", loss_sum / count},
                            {"lr", s.lr},
                            {"grad_norm", norm_sum / count},
                            {"samples_per_s", samples / seconds},
                            {"tokens_per_s", tokens / seconds},
                            {"flops_per_s", flops_per_s},
                            {"mfu", flops_per_s / matmul_flops_},
                            {"elapsed_s", elapsed},
                            {"eta_s", per_step * static_cast<double>(tr.steps - step_)}};
      std::string val_text;
      if (validate_now) {
        ValidationResult v = validate();
        rec["val_loss"] = v.loss;
        rec["val_t"] = v.t;
        rec["val_loss_t"] = v.loss_at_t;
        rec["val_loss_uncond"] = v.loss_uncond;
        val_text = cat(" | val ", v.loss, " (no caption ", v.loss_uncond, ")");
        observe_validation(v.loss);
      }
      if (metrics_) metrics_->write(rec);
      char line[512];
      std::snprintf(line, sizeof(line),
                    "step %lld/%lld | loss %.4f | lr %.2e | %.1f samples/s | %s tok/s | %sFLOP/s "
                    "(%.0f%% of matmul) | ETA %s",
                    static_cast<long long>(step_), static_cast<long long>(tr.steps), loss_sum / count,
                    s.lr, samples / seconds, format_si(tokens / seconds).c_str(),
                    format_si(flops_per_s).c_str(), 100.0 * flops_per_s / matmul_flops_,
                    format_duration(rec["eta_s"].get<double>()).c_str());
      log_info(line, val_text);
      loss_sum = norm_sum = seconds = flops = 0;
      samples = tokens = count = 0;
    }
    test_kill_point("step", step_);
    if (step_ == test_preempt_step_) request_preemption(SIGUSR1);
    const int signal = agreed_preemption_signal();
    if ((tr.ckpt_every > 0 && step_ % tr.ckpt_every == 0) || step_ == tr.steps || signal != 0) {
      // every rank writes its part into the one file; the last one and a preemption's in full
      const bool async = tr.async_save && signal == 0 && step_ < tr.steps;
      std::string path = save_checkpoint(async);
      if (writer_) log_info("checkpoint ", path, async ? " (writing in the background)" : "");
    }
    if (signal != 0 && step_ < tr.steps) {
      log_info("stopped by signal ", signal, " (", signal == SIGTERM ? "SIGTERM" : "SIGUSR1", ") after step ", step_,
               " with its checkpoint written; exit code ", kPreemptedExit, ": `reel train ... --resume` continues");
      return RunEnd::kPreempted;
    }
  }
  wait_for_save();
  return RunEnd::kFinished;
}

double Trainer::scheduled_lr(int64_t step) const { return plateau_.apply(schedule_lr(step)); }

double Trainer::schedule_lr(int64_t step) const {
  const TrainerSection& tr = recipe_.trainer;
  return learning_rate({tr.lr, tr.min_lr, tr.warmup_steps, tr.steps, tr.schedule}, step);
}

void Trainer::observe_validation(double loss) {
  if (plateau_.patience <= 0) return;
  if (mesh_) {  // every rank takes the same decision
    torch::Tensor v = torch::tensor({loss}, torch::kFloat64);
    mesh_->world().all_reduce(v, parallel::ReduceOp::kMax);
    loss = v.item<double>();
  }
  const double before = scheduled_lr(step_);
  if (!plateau_.observe(loss, schedule_lr(step_))) return;
  const TrainerSection& tr = recipe_.trainer;
  log_info("validation loss ", loss, " has not improved on ", plateau_.best, " by ", tr.plateau_threshold * 100, "% in ",
           tr.plateau_patience, " validations: LR ", before, " -> ", scheduled_lr(step_), " (trainer.plateau_factor ",
           tr.plateau_factor, ", floor trainer.min_lr ", tr.min_lr, ")");
}

int Trainer::agreed_preemption_signal() {
  if (!mesh_) return preemption_signal();
  // Any rank's signal stops every rank after the same step (one signalled rank is enough).
  torch::Tensor signal = torch::tensor({static_cast<double>(preemption_signal())}, torch::kFloat64);
  mesh_->world().all_reduce(signal, parallel::ReduceOp::kMax);
  return static_cast<int>(signal.item<double>());
}

}  // namespace reel::trainer
