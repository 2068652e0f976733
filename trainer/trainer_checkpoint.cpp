// The Trainer's checkpoints (see trainer.h): the state gathered into whole tensors and written,
// in full or in the background; a resume or a new stage's start read back.
#include "trainer/trainer.h"

#include <filesystem>
#include <mutex>
#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "data/shards.h"
#include "trainer/checkpoint.h"
#include "trainer/task.h"
#include "trainer/init_from.h"
#include "trainer/schedule.h"

namespace reel::trainer {

ShardedCheckpoint Trainer::sharded_state() const {
  const parallel::MeshCoords& at = mesh_->coords();
  const bool world_rank0 = mesh_->world().rank() == 0;
  ShardedCheckpoint ckpt;
  // A parameter-shaped tensor (weight, Adam moment or EMA): this rank's (tp) part is `local`
  // elements, of which it holds [begin, end) in `elements`. FSDP (`sharded`) spreads those parts over
  // dp_shard x cp; whatever else holds the same elements (replicas; tp ranks, for a whole tensor;
  // without FSDP, dp_shard and cp ranks) is left to the first of them.
  auto share = [&](const std::string& name, c10::IntArrayRef local, int64_t begin, int64_t end,
                   const torch::Tensor& elements, bool sharded) {
    TensorShare s;
    s.dtype = elements.scalar_type();
    s.local_shape = local.vec();
    s.shape = s.local_shape;
    auto cut = tp_plan_.find(name);
    const bool is_cut = cut != tp_plan_.end();
    if (is_cut) s.index_map = tensor_parallel_index_map(cut->second, local, tp_->rank(), tp_->size(), s.shape);
    if (at.replicate == 0 && (is_cut || at.tp == 0) && (sharded || (at.shard == 0 && at.cp == 0))) {
      s.begin = begin;
      s.end = end;
      s.data = elements.detach().reshape({-1}).to(torch::kCPU).clone();  // a host copy: training goes on
    }
    return s;
  };
  auto whole = [&](const std::string& name, const torch::Tensor& t) {
    return share(name, t.sizes(), 0, t.numel(), t, /*sharded=*/false);
  };
  auto step_entry = [&](const std::string& name, int64_t step) {
    ckpt.tensors[kOptimPrefix + name + "/step"] = whole_share(torch::scalar_tensor(step, torch::kLong), world_rank0);
  };

  std::set<std::string> sharded;
  if (fsdp_) {
    auto named = model_->named_parameters();
    const bool stepped = adamw_param_state(*optimizer_, params_.front()) != nullptr;
    for (int64_t u = 0; u < fsdp_->num_units(); ++u) {
      const auto* st = adamw_param_state(*optimizer_, params_[u]);
      REEL_CHECK(st != nullptr || !stepped, "FSDP: shard ", u, " has no AdamW state while shard 0 has");
      for (const parallel::Fsdp::ShardSpan& sp : fsdp_->shard_spans(u)) {
        sharded.insert(sp.name);
        const c10::IntArrayRef local = named[sp.name].sizes();
        // The shard's elements for this parameter: its flattened [begin, end).
        auto part = [&](const torch::Tensor& shard, const std::string& key) {
          ckpt.tensors[key] = share(sp.name, local, sp.begin, sp.end, shard.narrow(0, sp.offset, sp.end - sp.begin),
                                    /*sharded=*/true);
        };
        part(params_[u], "model/" + sp.name);
        if (st != nullptr) {
          const std::string base = kOptimPrefix + sp.name + "/";
          part(st->exp_avg(), base + "exp_avg");
          part(st->exp_avg_sq(), base + "exp_avg_sq");
          step_entry(sp.name, st->step());
        }
        if (ema_) part(ema_->shadow()[u], "ema/" + sp.name);
      }
    }
  } else {
    auto named = model_->named_parameters();
    for (const auto& p : named) {
      const auto* st = adamw_param_state(*optimizer_, p.value());
      if (st == nullptr) continue;
      const std::string base = kOptimPrefix + p.key() + "/";
      ckpt.tensors[base + "exp_avg"] = whole(p.key(), st->exp_avg());
      ckpt.tensors[base + "exp_avg_sq"] = whole(p.key(), st->exp_avg_sq());
      if (st->max_exp_avg_sq().defined()) ckpt.tensors[base + "max_exp_avg_sq"] = whole(p.key(), st->max_exp_avg_sq());
      step_entry(p.key(), st->step());
    }
    if (ema_) {
      for (size_t i = 0; i < ema_->names().size(); ++i) {
        ckpt.tensors["ema/" + ema_->names()[i]] = whole(ema_->names()[i], ema_->shadow()[i]);
      }
    }
  }
  // Frozen parameters (and, without FSDP, all) and buffers: every rank holds its (tp) part whole.
  for (const auto& p : model_->named_parameters()) {
    if (sharded.count(p.key())) continue;
    ckpt.tensors["model/" + p.key()] = whole(p.key(), p.value());
    if (ema_ && fsdp_) ckpt.tensors["ema/" + p.key()] = whole(p.key(), p.value().to(torch::kFloat32));  // their average is their value
  }
  for (const auto& b : model_->named_buffers()) ckpt.tensors["model/" + b.key()] = whole(b.key(), b.value());
  return ckpt;
}

Trainer::~Trainer() {
  try {
    wait_for_save();
  } catch (const std::exception& e) {
    log_warn("the last checkpoint write failed: ", e.what());
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (save_comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&save_comm_);
}

void Trainer::wait_for_save() {
  if (save_thread_.joinable()) save_thread_.join();
  if (save_error_) std::rethrow_exception(std::exchange(save_error_, nullptr));
}

std::string Trainer::save_checkpoint(bool async) {
  wait_for_save();
  ShardedCheckpoint ckpt;
  if (mesh_) {
    // Every rank must be here: the write's own collectives (MPI-IO) are not watched, this one is.
    mesh_->world().barrier();
    ckpt = sharded_state();  // each rank writes its part
  } else {
    Checkpoint whole;
    add_module_state(*model_, "model/", whole);
    add_adamw_state(*optimizer_, *model_, whole);
    if (ema_) {
      for (size_t i = 0; i < ema_->names().size(); ++i) {
        whole.tensors["ema/" + ema_->names()[i]] = ema_->shadow()[i].clone();
      }
    }
    for (auto& [name, t] : whole.tensors) ckpt.tensors[name] = whole_share(t, /*writes=*/true);
  }
  ckpt.step = step_;
  const torch::Tensor rng = at::detail::getDefaultCPUGenerator().get_state();
  ckpt.tensors["rng/torch_cpu"] = whole_share(rng, writer_);  // world rank 0's
  if (mesh_) {  // every rank's, row r written by world rank r
    const int64_t world = mesh_->world().size(), rank = mesh_->world().rank();
    TensorShare rows;
    rows.shape = {world, rng.numel()};
    rows.dtype = rng.scalar_type();
    rows.local_shape = {1, rng.numel()};
    rows.index_map = {{{0, rank, 1}}, {{0, 0, rng.numel()}}};
    rows.end = rng.numel();
    rows.data = rng.reshape({-1}).clone();
    ckpt.tensors["rng/ranks/torch_cpu"] = rows;
  }
  if (ema_) ckpt.meta["ema_decay"] = std::to_string(ema_->decay());
  data::LoaderPosition pos = loader_->position();
  // Global batches of data.batch_size samples, the same whatever the mesh: any mesh resumes here.
  ckpt.meta["data_position"] = data_position_json(pos, recipe_.data);
  const TrainerSection& tr = recipe_.trainer;
  const LrScheduleOptions lr{tr.lr, tr.min_lr, tr.warmup_steps, tr.steps, tr.schedule};
  ckpt.meta["lr_schedule"] = nlohmann::json{{"schedule", lr.kind}, {"lr", lr.lr}, {"min_lr", lr.min_lr},
                                            {"warmup_steps", lr.warmup_steps}, {"steps", lr.total_steps},
                                            {"next_step", step_}, {"next_lr", scheduled_lr(step_)}}.dump();
  ckpt.meta["lr_plateau"] = nlohmann::json{{"scale", plateau_.scale}, {"best_val", plateau_.best}, {"bad", plateau_.bad}}.dump();
  ckpt.meta["mesh"] = mesh_ ? cat(mesh_->dims().describe(), " (", mesh_->world().size(), " ranks)")
                            : std::string("one process");
  ckpt.meta["rng"] = cat("per-step generators seeded from (seed=", recipe_.seed,
                         ", step, micro-batch); data order from (seed, epoch)");
  ckpt.meta["recipe"] = to_yaml(recipe_);
  if (!latent_tae_.empty()) ckpt.meta["latent_tae"] = latent_tae_;
  std::string path = checkpoint_path(recipe_.run.dir, step_);
  // Every tensor of ckpt is a host copy (never a view of a parameter, moment or EMA shadow), so
  // the write may run while the next steps change them. With a mesh every rank writes (in the
  // background too: save_comm_ is the writes' own communicator); world rank 0 then moves `latest`.
  auto write = [path, ckpt = std::move(ckpt), run = recipe_.run, tr = recipe_.trainer, comm = save_comm_,
                writer = writer_]() {
    // HDF5 is not thread-safe and the loader's threads read shards concurrently.
    std::lock_guard<std::recursive_mutex> lock(data::hdf5_mutex());
    save_checkpoint_sharded(path, ckpt, comm);
    if (!writer) return;
    mark_latest(run.dir, std::filesystem::path(path).filename().string());
    prune_checkpoints(run.dir, static_cast<int>(tr.keep_last), tr.keep_every);
  };
  if (!async) {
    write();
    return path;
  }
  save_thread_ = std::thread([this, write = std::move(write)]() {
    try {
      write();
    } catch (...) {
      save_error_ = std::current_exception();
    }
  });
  return path;
}

data::LoaderPosition Trainer::load_checkpoint(const std::string& path) {
  Checkpoint ckpt = reel::trainer::load_checkpoint(path);
  load_module_state(*model_, ckpt, "model/");
  load_adamw_state(*optimizer_, *model_, ckpt);
  if (ema_) {
    for (size_t i = 0; i < ema_->names().size(); ++i) {
      auto it = ckpt.tensors.find("ema/" + ema_->names()[i]);
      if (it == ckpt.tensors.end()) {
        fail(path, ": no EMA tensor 'ema/", ema_->names()[i], "' but the recipe has trainer.ema_decay = ",
             recipe_.trainer.ema_decay, "; resume with trainer.ema_decay=0 or from a checkpoint with EMA");
      }
      ema_->shadow()[i].copy_(it->second);
    }
  }
  // This rank's generator when the checkpoint has every rank's and as many ranks; else rank 0's.
  auto rng = ckpt.tensors.find("rng/torch_cpu");
  auto rows = ckpt.tensors.find("rng/ranks/torch_cpu");
  const int64_t world = mesh_ ? mesh_->world().size() : 1, rank = mesh_ ? mesh_->world().rank() : 0;
  at::Generator global = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
  if (rows != ckpt.tensors.end() && rows->second.dim() == 2 && rows->second.size(0) == world) {
    global.set_state(rows->second[rank].clone());
  } else if (rng != ckpt.tensors.end()) {
    global.set_state(rng->second);
  }
  auto pos = ckpt.meta.find("data_position");
  if (pos == ckpt.meta.end()) fail(path, ": checkpoint has no data_position; it cannot be resumed exactly");
  step_ = ckpt.step;
  if (auto plateau = ckpt.meta.find("lr_plateau"); plateau != ckpt.meta.end()) {
    try {
      const nlohmann::json j = nlohmann::json::parse(plateau->second);
      plateau_.scale = j.at("scale").get<double>();
      plateau_.best = j.at("best_val").is_null() ? std::numeric_limits<double>::infinity() : j.at("best_val").get<double>();
      plateau_.bad = j.at("bad").get<int64_t>();
    } catch (const std::exception& e) {
      fail(path, ": meta lr_plateau '", plateau->second, "' is not readable (", e.what(), ")");
    }
  }
  return parse_data_position(pos->second, recipe_.data, path);
}

data::LoaderPosition Trainer::resume_latest() {
  const std::string path = resolve_latest(recipe_.run.dir, /*verify_data=*/true);  // a corrupt latest: the one before
  const data::LoaderPosition start = load_checkpoint(path);
  log_info("resumed from ", path, " at step ", step_);
  if (writer_) {
    for (const std::string& tmp : remove_interrupted_writes(recipe_.run.dir)) {
      log_info("removed ", tmp, ", the remains of an interrupted checkpoint write");
    }
  }
  return start;
}

void Trainer::load_text_weights() {
  for (const TextEncoderSection& e : recipe_.model.text_encoders) {
    if (e.weights.empty()) continue;
    const std::string path = resolve_checkpoint_argument(e.weights);
    const int64_t n = load_text_encoder_weights(*model_, e.name, reel::trainer::load_checkpoint(path));
    log_info("text slot '", e.name, "': ", n, " encoder tensors from ", path);
  }
}

void Trainer::initialize_from(const std::string& source) {
  const std::string path = resolve_checkpoint_argument(source);  // every rank reads it: the same weights
  const InitReport r = init_from_checkpoint(*model_, reel::trainer::load_checkpoint(path));
  auto names = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& n : v) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("none") : s;
  };
  log_info("init_from ", path, ": ", r.copied.size(), " tensors copied; position tables resampled: ",
           names(r.resampled), "; new (fresh initialization): ", names(r.fresh), "; in the checkpoint only: ",
           names(r.ignored));
}

}  // namespace reel::trainer
