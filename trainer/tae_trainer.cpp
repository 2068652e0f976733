// Training the temporal autoencoder (see tae_trainer.h).
#include "trainer/tae_trainer.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <mutex>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/runtime.h"
#include "data/shards.h"
#include "data/video_io.h"
#include "parallel/mpi_communicator.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_sharded.h"
#include "trainer/fsdp_state.h"
#include "trainer/preemption.h"
#include "trainer/schedule.h"
#include "trainer/tae_loss.h"
#include "trainer/task.h"

namespace reel::trainer {

model::TaeOptions tae_options(const Recipe& recipe) {
  const TaeSection& t = recipe.model.tae;
  model::TaeOptions o;
  o.in_channels = recipe.model.in_channels;
  o.latent_channels = t.latent_channels;
  o.channels = t.channels;
  o.blocks = t.blocks;
  o.compression = {t.compression[0], t.compression[1], t.compression[2]};
  o.attention = t.attention;
  o.norm_groups = t.norm_groups;
  model::check_tae_options(o);
  return o;
}

model::TaeModel load_tae(const std::string& checkpoint) {
  Checkpoint ckpt = load_checkpoint(checkpoint);
  const Recipe recipe = checkpoint_recipe(ckpt, checkpoint);
  if (recipe.model.name != "tae") {
    fail(checkpoint, " holds a '", recipe.model.name, "' model, not a TAE (model.name: tae)");
  }
  model::TaeModel tae(tae_options(recipe));
  load_module_state(*tae, ckpt, "model/");
  tae->eval();
  return tae;
}

torch::Tensor to_pixels(const std::vector<torch::Tensor>& clips) {
  std::vector<torch::Tensor> xs;
  for (const torch::Tensor& c : clips) xs.push_back(c.permute({3, 0, 1, 2}).to(torch::kFloat32) / 127.5 - 1);
  return torch::stack(xs);
}

namespace {

void add(TaeScores& s, const torch::Tensor& psnr_b, const torch::Tensor& ssim_b, const torch::Tensor& l1_b) {
  s.psnr += psnr_b.sum().item<double>();
  s.ssim += ssim_b.sum().item<double>();
  s.l1 += l1_b.sum().item<double>();
  s.clips += psnr_b.size(0);
}

void finish(TaeScores& s) {
  if (s.clips == 0) return;
  s.psnr /= s.clips;
  s.ssim /= s.clips;
  s.l1 /= s.clips;
}

std::string printed(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

torch::Tensor hinge_real(const torch::Tensor& logits) { return torch::relu(1 - logits).mean(); }
torch::Tensor hinge_fake(const torch::Tensor& logits) { return torch::relu(1 + logits).mean(); }

// Moves "optim/..." entries to "<prefix>..." and back, so two optimizers share a checkpoint.
void rename_prefix(std::map<std::string, torch::Tensor>& tensors, const std::string& from, const std::string& to) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : tensors) {
    out[name.rfind(from, 0) == 0 ? to + name.substr(from.size()) : name] = t;
  }
  tensors = std::move(out);
}

}  // namespace

TaeValidation validate_tae(
    model::TaeModel& tae, const data::Dataset& data, int64_t clips_per_bucket, int64_t batch_size,
    const std::function<void(const data::Bucket&, const torch::Tensor&, const torch::Tensor&)>& each) {
  torch::NoGradGuard no_grad;
  const bool was_training = tae->is_training();
  tae->eval();
  TaeValidation v;
  for (const data::Dataset::BucketRange& r : data.bucket_ranges()) {
    const int64_t end = clips_per_bucket > 0 ? std::min(r.end, r.begin + clips_per_bucket) : r.end;
    TaeScores& bucket = v.buckets[r.bucket.name()];
    for (int64_t i = r.begin; i < end; i += batch_size) {
      std::vector<torch::Tensor> clips;
      {
        std::lock_guard<std::recursive_mutex> lock(data::hdf5_mutex());
        for (int64_t j = i; j < std::min(end, i + batch_size); ++j) clips.push_back(data.get(j).pixels);
      }
      torch::Tensor x = to_pixels(clips);
      torch::Tensor recon = tae->decode(tae->encode(x).first, x.size(2)).clamp(-1, 1);
      torch::Tensor p = psnr(x, recon), s = ssim(x, recon), l1 = (x - recon).abs().flatten(1).mean(1);
      add(bucket, p, s, l1);
      add(v.all, p, s, l1);
      if (each) each(r.bucket, x, recon);
    }
    finish(bucket);
  }
  finish(v.all);
  if (was_training) tae->train();
  return v;
}

nlohmann::json run_tae_eval(const std::string& checkpoint, const std::string& data_dir, const std::string& out_dir,
                            int64_t videos_per_bucket, int scale) {
  const std::string path = resolve_checkpoint_argument(checkpoint);
  model::TaeModel tae = load_tae(path);
  const std::string dir = std::filesystem::is_directory(data_dir + "/val") ? data_dir + "/val" : data_dir;
  const data::Dataset data = data::Dataset::open(dir);
  make_dirs(out_dir);
  std::map<std::string, int64_t> written;
  std::vector<std::string> videos;
  auto to_uint8 = [](const torch::Tensor& x) {  // (3, F, H, W) in [-1, 1] -> (F, H, W, 3)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8).permute({1, 2, 3, 0}).contiguous();
  };
  const TaeValidation v = validate_tae(tae, data, 0, 16, [&](const data::Bucket& b, const torch::Tensor& x,
                                                            const torch::Tensor& recon) {
    for (int64_t i = 0; i < x.size(0) && written[b.name()] < videos_per_bucket; ++i) {
      const std::string file = cat(out_dir, "/", b.name(), "_", written[b.name()]++, ".mp4");
      data::write_mp4(file, torch::cat({to_uint8(x[i]), to_uint8(recon[i])}, 2), 8, scale);
      videos.push_back(std::filesystem::path(file).filename().string());
    }
  });
  auto scores = [](const TaeScores& s) {
    return nlohmann::json{{"psnr", s.psnr}, {"ssim", s.ssim}, {"l1", s.l1}, {"clips", s.clips}};
  };
  nlohmann::json j = scores(v.all);
  TaeScores images, clips;
  for (const auto& [name, s] : v.buckets) {
    j["buckets"][name] = scores(s);
    TaeScores& into = name.rfind("1x", 0) == 0 ? images : clips;
    into.psnr += s.psnr * s.clips;
    into.ssim += s.ssim * s.clips;
    into.l1 += s.l1 * s.clips;
    into.clips += s.clips;
  }
  for (TaeScores* s : {&images, &clips}) {
    if (s->clips > 0) {
      s->psnr /= s->clips;
      s->ssim /= s->clips;
      s->l1 /= s->clips;
    }
  }
  j["images"] = scores(images);
  j["videos"] = scores(clips);
  j["checkpoint"] = path;
  j["data"] = dir;
  j["side_by_side"] = videos;
  write_file_atomic(out_dir + "/eval_tae.json", j.dump(2) + "\n");
  return j;
}

TaeTrainer::TaeTrainer(Recipe recipe, bool resume, parallel::Mesh* mesh) : recipe_(std::move(recipe)), mesh_(mesh) {
  const TrainerSection& tr = recipe_.trainer;
  if (tr.device != "cpu")
    fail(recipe_.source, ": trainer.device = ", tr.device, ": the TAE (model.name: tae) trains on the CPU only so ",
         "far; set trainer.device=cpu");
  if (mesh_) {
    const parallel::ParallelDims& d = mesh_->dims();
    if (d.tp != 1 || d.cp != 1)
      fail(recipe_.source, ": the TAE (model.name: tae) trains data-parallel (replicas or FSDP) only: ",
           "parallel.tp = ", d.tp, " and parallel.cp = ", d.cp, " must be 1; a convolutional autoencoder has no ",
           "heads to split, and its clips are short enough for one rank");
    data_group_ = &mesh_->group(parallel::MeshGroup::kDp);
    rank_ = data_group_->rank();
    ranks_ = data_group_->size();
    if (d.dp_shard == 1 && ranks_ > 1) dp_ = std::make_unique<parallel::DataParallel>(*data_group_);
  }
  if (const char* step = std::getenv("REEL_TEST_PREEMPT_AT_STEP"); step != nullptr && writer()) {
    test_preempt_step_ = std::stoll(step);
  }
  const int threads = configure_threads(static_cast<int>(tr.threads));
  train_data_ = std::make_shared<const data::Dataset>(data::Dataset::open(recipe_.data.dir + "/train"));
  val_data_ = std::make_shared<const data::Dataset>(data::Dataset::open(recipe_.data.dir + "/val"));
  const model::TaeOptions options = tae_options(recipe_);
  for (const auto* d : {train_data_.get(), val_data_.get()})
    if (d->latents() || d->channels() != options.in_channels)
      fail(recipe_.source, ": the TAE trains on pixels, but dataset '", d->dir(), "' holds ",
           d->latents() ? "latents (`reel data encode` output)" : cat(d->channels(), "-channel clips"),
           "; point data.dir at a pixel dataset");
  for (const data::Bucket& b : train_data_->buckets()) {
    if (b.height % options.compression[1] != 0 || b.width % options.compression[2] != 0) {
      fail(recipe_.source, ": dataset '", recipe_.data.dir, "' has bucket ", b.name(), " whose height and width ",
           "model.tae.compression [", options.compression[0], ",", options.compression[1], ",", options.compression[2],
           "] does not divide");
    }
  }
  tae_ = model::TaeModel(options);
  tae_->init_weights(recipe_.seed);
  opt_ = std::make_unique<torch::optim::AdamW>(tae_->parameters(), adamw_options(tr));
  if (recipe_.tae_loss.adversarial > 0) {
    disc_ = model::TaeDiscriminator(options.in_channels);
    disc_->init_weights(mix_seed(recipe_.seed, 1));
    disc_opt_ = std::make_unique<torch::optim::AdamW>(disc_->parameters(), adamw_options(tr));
  }
  const std::string checkpoints = recipe_.run.dir + "/checkpoints";
  const bool resuming = resume && std::filesystem::exists(checkpoints) && !std::filesystem::is_empty(checkpoints);
  if (!recipe_.init_from.empty() && !resuming) {  // a later stage (e.g. with the outlier penalty)
    const std::string path = resolve_checkpoint_argument(recipe_.init_from);
    load_module_state(*tae_, reel::trainer::load_checkpoint(path), "model/");
    log_info("init_from ", path, ": the TAE's weights");
  }
  make_dirs(recipe_.run.dir);
  data::LoaderPosition start;
  if (resuming) {
    const std::string path = resolve_latest(recipe_.run.dir, /*verify_data=*/true);
    start = load_checkpoint(path);
    log_info("resumed from ", path, " at step ", step_);
    for (const std::string& tmp : remove_interrupted_writes(recipe_.run.dir)) log_info("removed ", tmp);
  } else if (resume) {
    log_info("--resume: no checkpoint in ", checkpoints, " yet; starting from step 0");
  }
  if (dp_) {  // every replica starts from rank 0's weights (they are equal already: same seed or file)
    dp_->broadcast_parameters(tae_->parameters());
    if (disc_) dp_->broadcast_parameters(disc_->parameters());
  }
  if (mesh_ && mesh_->dims().dp_shard > 1) shard();
  data::LoaderOptions lo = loader_options(recipe_);
  lo.batch_size = static_cast<int>(parallel::per_rank_batch(recipe_.data.batch_size, ranks_));
  lo.rank = rank_;
  lo.world_size = ranks_;
  loader_ = std::make_unique<data::Loader>(train_data_, lo, start);
  if (writer()) {
    write_file_atomic(recipe_.run.dir + "/recipe.yaml", to_yaml(recipe_));
    metrics_ = std::make_unique<MetricsLog>(recipe_.run.dir + "/metrics.jsonl");
  }
  int64_t params = 0;
  for (const auto& p : tae_->parameters()) params += p.numel();
  log_info("reel ", version(), " (", git_commit(), ")  threads ", threads);
  log_info("model tae: ", params, " parameters (formula ", model::tae_param_count(options), "), compression ",
           options.compression[0], "x", options.compression[1], "x", options.compression[2], ", ",
           options.latent_channels, " latent channels  data: ", train_data_->size(), " train / ", val_data_->size(),
           " val clips", dp_ ? cat("  ", ranks_, " data-parallel ranks")
                             : fsdp_ ? cat("  FSDP over ", ranks_, " ranks (", mesh_->dims().describe(), ")")
                                     : std::string());
}

void TaeTrainer::shard() {
  const TrainerSection& tr = recipe_.trainer;
  auto& shard_group = mesh_->group(parallel::MeshGroup::kFsdp);
  auto* replicas = &mesh_->group(parallel::MeshGroup::kReplicate);
  fsdp_ = std::make_unique<parallel::Fsdp>(*tae_, std::vector<std::string>{}, shard_group, replicas);
  opt_ = sharded_adamw(*fsdp_, *tae_, *opt_, adamw_options(tr));
  if (disc_) {
    disc_fsdp_ = std::make_unique<parallel::Fsdp>(*disc_, std::vector<std::string>{}, shard_group, replicas);
    disc_opt_ = sharded_adamw(*disc_fsdp_, *disc_, *disc_opt_, adamw_options(tr));
  }
}

double TaeTrainer::apply_gradients(torch::nn::Module& module, parallel::Fsdp* fsdp, torch::optim::AdamW& opt,
                                   double max_norm) {
  const double limit = max_norm > 0 ? max_norm : std::numeric_limits<double>::infinity();
  double norm = 0;
  if (fsdp) {
    fsdp->finish_backward();  // reduce-scattered (averaged) into the shards
    fsdp->synchronize();      // HSDP: averaged over the replicas
    norm = fsdp->clip_grad_norm(limit);
  } else {
    if (dp_) dp_->average_gradients(module.parameters(), 0.0);
    norm = torch::nn::utils::clip_grad_norm_(module.parameters(), limit);
  }
  opt.step();
  if (fsdp) fsdp->after_optimizer_step();  // the weights gathered again from the stepped shards
  return norm;
}

int TaeTrainer::agreed_preemption_signal() {
  if (!mesh_) return preemption_signal();
  torch::Tensor signal = torch::tensor({static_cast<double>(preemption_signal())}, torch::kFloat64);
  mesh_->world().all_reduce(signal, parallel::ReduceOp::kMax);
  return static_cast<int>(signal.item<double>());
}

void TaeTrainer::train_step(nlohmann::json& rec) {
  const TrainerSection& tr = recipe_.trainer;
  const TaeLossSection& w = recipe_.tae_loss;
  const LrScheduleOptions lr{tr.lr, tr.min_lr, tr.warmup_steps, tr.steps, tr.schedule};
  const double rate = learning_rate(lr, step_);
  for (auto* opt : {opt_.get(), disc_opt_.get()}) {
    if (opt == nullptr) continue;
    for (auto& group : opt->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(rate);
  }
  data::Batch batch = loader_->next();
  const torch::Tensor& x = batch.pixels;
  at::Generator gen = at::detail::createCPUGenerator(mix_seed(recipe_.seed, static_cast<uint64_t>(step_) + 1000));
  auto [mean, logvar] = tae_->encode(x);
  // The whole global batch's noise, of which this rank takes its rows: the same as one process.
  std::vector<int64_t> noise_shape = mean.sizes().vec();
  noise_shape[0] *= ranks_;
  const torch::Tensor noise = torch::randn(noise_shape, gen).narrow(0, rank_ * mean.size(0), mean.size(0));
  torch::Tensor z = mean + torch::exp(0.5 * logvar) * noise;
  torch::Tensor recon = tae_->decode(z, x.size(2));
  torch::Tensor l1 = (x - recon).abs().mean(), l2 = (x - recon).pow(2).mean();
  torch::Tensor grad = gradient_loss(x, recon), kl = kl_loss(mean, logvar);
  torch::Tensor loss = w.l1 * l1 + w.l2 * l2 + w.gradient * grad + w.kl * kl;
  rec["l1"] = l1.item<double>();
  rec["l2"] = l2.item<double>();
  rec["gradient"] = grad.item<double>();
  rec["kl"] = kl.item<double>();
  if (w.outlier > 0) {
    torch::Tensor opl = outlier_penalty(z, w.outlier_r);
    loss = loss + w.outlier * opl;
    rec["outlier"] = opl.item<double>();
  }
  const bool adversarial = disc_ && step_ >= w.adversarial_start;
  if (adversarial) {
    // The generator's adversarial term reaches the TAE through the discriminator, whose own
    // weights take no gradient from it (they are trained on d_loss below).
    for (auto& p : disc_->parameters()) p.requires_grad_(false);
    torch::Tensor g_adv = -disc_->forward(recon).mean();
    for (auto& p : disc_->parameters()) p.requires_grad_(true);
    loss = loss + w.adversarial * g_adv;
    rec["adversarial"] = g_adv.item<double>();
  }
  rec["loss"] = loss.item<double>();
  rec["psnr"] = psnr(x, recon.detach().clamp(-1, 1)).mean().item<double>();
  opt_->zero_grad();
  if (fsdp_) fsdp_->prepare_root_gradients();
  loss.backward();
  const double norm = apply_gradients(*tae_, fsdp_.get(), *opt_, tr.grad_clip);
  if (adversarial) {
    disc_opt_->zero_grad();
    if (disc_fsdp_) disc_fsdp_->prepare_root_gradients();
    torch::Tensor d_loss = hinge_real(disc_->forward(x)) + hinge_fake(disc_->forward(recon.detach()));
    d_loss.backward();
    rec["disc_loss"] = d_loss.item<double>();
    apply_gradients(*disc_, disc_fsdp_.get(), *disc_opt_, 0);
  }
  if (data_group_ && ranks_ > 1) {  // the logged values averaged over the data ranks (one small all-reduce)
    std::vector<std::string> keys;
    std::vector<double> values;
    for (const auto& [key, value] : rec.items()) keys.push_back(key), values.push_back(value.get<double>());
    torch::Tensor t = torch::tensor(values, torch::kFloat64);
    data_group_->all_reduce(t, parallel::ReduceOp::kSum);
    for (size_t i = 0; i < keys.size(); ++i) rec[keys[i]] = t[int64_t(i)].item<double>() / ranks_;
  }
  ++step_;
  rec["step"] = step_;
  rec["lr"] = rate;
  rec["grad_norm"] = norm;
  rec["samples"] = x.size(0) * ranks_;
}

RunEnd TaeTrainer::run() {
  const TrainerSection& tr = recipe_.trainer;
  install_preemption_handlers();
  tae_->train();
  double seconds = 0;
  while (step_ < tr.steps) {
    nlohmann::json rec;
    const auto start = std::chrono::steady_clock::now();
    train_step(rec);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds += dt;
    rec["samples_per_s"] = rec["samples"].get<double>() / dt;
    std::string val_text;
    if (writer() && (step_ % tr.val_every == 0 || step_ == tr.steps)) {
      const TaeValidation v = validate_tae(tae_, *val_data_, tr.val_samples, recipe_.data.batch_size);
      rec["val_psnr"] = v.all.psnr;
      rec["val_ssim"] = v.all.ssim;
      val_text = cat(" | val PSNR ", printed("%.2f", v.all.psnr), " dB SSIM ", printed("%.4f", v.all.ssim));
    }
    if (writer() && (step_ % tr.log_every == 0 || step_ == tr.steps || !val_text.empty())) {
      const double eta = seconds / static_cast<double>(step_) * static_cast<double>(tr.steps - step_);
      log_info("step ", step_, "/", tr.steps, " | loss ", printed("%.4f", rec["loss"].get<double>()), " | L1 ",
               printed("%.4f", rec["l1"].get<double>()), " | PSNR ", printed("%.2f", rec["psnr"].get<double>()),
               " dB | lr ", printed("%.2e", rec["lr"].get<double>()), " | ", printed("%.1f", rec["samples_per_s"].get<double>()),
               " samples/s | ETA ", format_duration(eta), val_text);
      metrics_->write(rec);
    }
    if (step_ == test_preempt_step_) request_preemption(SIGUSR1);
    const int signal = agreed_preemption_signal();
    if (step_ % tr.ckpt_every == 0 || step_ == tr.steps || signal != 0) save_checkpoint();
    if (signal != 0 && step_ < tr.steps) {
      log_info("stopped by signal ", signal, " after step ", step_, " with its checkpoint written; exit code ",
               kPreemptedExit, ": `reel train ... --resume` continues");
      return RunEnd::kPreempted;
    }
  }
  return RunEnd::kFinished;
}

void TaeTrainer::save_checkpoint() {
  const std::string path = checkpoint_path(recipe_.run.dir, step_);
  if (fsdp_) {  // every rank writes its shards' spans; the first replica of each shard writes them
    mesh_->world().barrier();  // watched; the write's own collectives (MPI-IO) are not
    const bool first_replica = mesh_->coords().replicate == 0, world0 = mesh_->world().rank() == 0;
    ShardedCheckpoint ckpt;
    ckpt.step = step_;
    add_fsdp_shares(*fsdp_, *tae_, *opt_, "model/", kOptimPrefix, first_replica, world0, ckpt);
    if (disc_) add_fsdp_shares(*disc_fsdp_, *disc_, *disc_opt_, "disc/", "disc_optim/", first_replica, world0, ckpt);
    ckpt.tensors["rng/torch_cpu"] = whole_share(at::detail::getDefaultCPUGenerator().get_state(), world0);
    ckpt.meta["data_position"] = data_position_json(loader_->position(), recipe_.data);
    ckpt.meta["recipe"] = to_yaml(recipe_);
    const auto* world = dynamic_cast<const parallel::MpiCommunicator*>(&mesh_->world());
    REEL_CHECK(world != nullptr, "checkpoints are written over MPI-IO: the mesh's world must be an MPI communicator");
    std::lock_guard<std::recursive_mutex> lock(data::hdf5_mutex());
    save_checkpoint_sharded(path, ckpt, world->comm());
    if (world0) {
      mark_latest(recipe_.run.dir, std::filesystem::path(path).filename().string());
      prune_checkpoints(recipe_.run.dir, static_cast<int>(recipe_.trainer.keep_last), recipe_.trainer.keep_every);
      log_info("checkpoint ", path);
    }
    mesh_->world().barrier();
    return;
  }
  if (!writer()) {  // rank 0 writes the whole file (every replica holds the same state)
    mesh_->world().barrier();
    return;
  }
  Checkpoint ckpt;
  ckpt.step = step_;
  add_module_state(*tae_, "model/", ckpt);
  add_adamw_state(*opt_, *tae_, ckpt);
  if (disc_) {
    Checkpoint d;
    add_module_state(*disc_, "disc/", d);
    add_adamw_state(*disc_opt_, *disc_, d);
    rename_prefix(d.tensors, kOptimPrefix, "disc_optim/");
    ckpt.tensors.insert(d.tensors.begin(), d.tensors.end());
  }
  ckpt.tensors["rng/torch_cpu"] = at::detail::getDefaultCPUGenerator().get_state();
  const data::LoaderPosition pos = loader_->position();
  ckpt.meta["data_position"] = data_position_json(pos, recipe_.data);
  ckpt.meta["recipe"] = to_yaml(recipe_);
  {
    std::lock_guard<std::recursive_mutex> lock(data::hdf5_mutex());
    reel::trainer::save_checkpoint(path, ckpt);
    mark_latest(recipe_.run.dir, std::filesystem::path(path).filename().string());
    prune_checkpoints(recipe_.run.dir, static_cast<int>(recipe_.trainer.keep_last), recipe_.trainer.keep_every);
  }
  log_info("checkpoint ", path);
  if (mesh_) mesh_->world().barrier();
}

data::LoaderPosition TaeTrainer::load_checkpoint(const std::string& path) {
  Checkpoint ckpt = reel::trainer::load_checkpoint(path);
  Checkpoint disc;
  for (auto it = ckpt.tensors.begin(); it != ckpt.tensors.end();) {  // the discriminator's part
    if (it->first.rfind("disc/", 0) == 0 || it->first.rfind("disc_optim/", 0) == 0) {
      disc.tensors.insert(*it);
      it = ckpt.tensors.erase(it);
    } else {
      ++it;
    }
  }
  ckpt.tensors.erase("rng/torch_cpu");
  load_module_state(*tae_, ckpt, "model/");
  load_adamw_state(*opt_, *tae_, ckpt);
  if (disc_) {
    if (disc.tensors.empty()) {
      fail(path, ": no discriminator in the checkpoint but tae_loss.adversarial = ", recipe_.tae_loss.adversarial,
           "; resume with tae_loss.adversarial=0 or start a new run with init_from");
    }
    disc.source = path;
    rename_prefix(disc.tensors, "disc_optim/", kOptimPrefix);
    load_module_state(*disc_, disc, "disc/");
    load_adamw_state(*disc_opt_, *disc_, disc);
  }
  step_ = ckpt.step;
  auto pos = ckpt.meta.find("data_position");
  if (pos == ckpt.meta.end()) fail(path, ": checkpoint has no data_position; it cannot be resumed exactly");
  return parse_data_position(pos->second, recipe_.data, path);
}

}  // namespace reel::trainer
