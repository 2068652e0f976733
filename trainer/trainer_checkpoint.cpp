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
#include "trainer/init_from.h"
#include "trainer/schedule.h"

namespace reel::trainer {

void Trainer::gather_tensor_parallel(Checkpoint& ckpt) {
  for (const auto& [name, cut] : tp_plan_) {  // the same names in the same order on every tp rank
    const std::string optim = kOptimPrefix + name + "/";
    for (const std::string& key : {"model/" + name, "ema/" + name, optim + "exp_avg", optim + "exp_avg_sq",
                                   optim + "max_exp_avg_sq"}) {
      auto it = ckpt.tensors.find(key);
      if (it != ckpt.tensors.end()) it->second = tensor_parallel_gather(cut, it->second, *tp_);
    }
  }
}

void Trainer::add_sharded_state(Checkpoint& ckpt) {
  std::set<std::string> sharded;
  for (auto& [name, t] : fsdp_->full_tensors([&](int64_t u) { return params_[u]; })) {
    ckpt.tensors["model/" + name] = t;
    sharded.insert(name);
  }
  // Frozen parameters and buffers are whole on every rank.
  for (const auto& p : model_->named_parameters()) {
    if (!sharded.count(p.key())) ckpt.tensors["model/" + p.key()] = p.value().detach().to(torch::kCPU).clone();
  }
  for (const auto& b : model_->named_buffers()) ckpt.tensors["model/" + b.key()] = b.value().to(torch::kCPU).clone();
  if (const auto* first = adamw_param_state(*optimizer_, params_.front())) {
    auto moment = [&](bool second) {
      return fsdp_->full_tensors([&](int64_t u) {
        const auto* st = adamw_param_state(*optimizer_, params_[u]);
        REEL_CHECK(st != nullptr, "FSDP: shard ", u, " has no AdamW state while shard 0 has");
        return second ? st->exp_avg_sq() : st->exp_avg();
      });
    };
    const auto exp_avg = moment(false), exp_avg_sq = moment(true);  // the same names, in the same order
    for (size_t i = 0; i < exp_avg.size(); ++i) {
      add_adamw_entries(exp_avg[i].first, first->step(), exp_avg[i].second, exp_avg_sq[i].second, ckpt);
    }
  }
  if (ema_) {
    for (auto& [name, t] : fsdp_->full_tensors([&](int64_t u) { return ema_->shadow()[u]; })) {
      ckpt.tensors["ema/" + name] = t;
    }
    for (const auto& p : model_->named_parameters()) {  // frozen: their average is their value
      if (!sharded.count(p.key())) ckpt.tensors["ema/" + p.key()] = p.value().detach().to(torch::kCPU, torch::kFloat32).clone();
    }
  }
}

Trainer::~Trainer() {
  try {
    wait_for_save();
  } catch (const std::exception& e) {
    log_warn("the last checkpoint write failed: ", e.what());
  }
}

void Trainer::wait_for_save() {
  if (save_thread_.joinable()) save_thread_.join();
  if (save_error_) std::rethrow_exception(std::exchange(save_error_, nullptr));
}

std::string Trainer::save_checkpoint(bool async) {
  wait_for_save();
  Checkpoint ckpt;
  ckpt.step = step_;
  if (fsdp_) {
    add_sharded_state(ckpt);  // collective
  } else {
    add_module_state(*model_, "model/", ckpt);
    add_adamw_state(*optimizer_, *model_, ckpt);
    if (ema_) {
      for (size_t i = 0; i < ema_->names().size(); ++i) {
        ckpt.tensors["ema/" + ema_->names()[i]] = ema_->shadow()[i].clone();
      }
    }
  }
  if (tp_) gather_tensor_parallel(ckpt);  // collective
  if (!writer_) return {};
  if (ema_) ckpt.meta["ema_decay"] = std::to_string(ema_->decay());
  ckpt.tensors["rng/torch_cpu"] = at::detail::getDefaultCPUGenerator().get_state();
  data::LoaderPosition pos = loader_->position();
  // Global batches of data.batch_size samples, the same whatever the mesh: any mesh resumes here.
  ckpt.meta["data_position"] =
      nlohmann::json{{"epoch", pos.epoch}, {"batch", pos.batch}, {"global_batch", recipe_.data.batch_size}}.dump();
  const TrainerSection& tr = recipe_.trainer;
  const LrScheduleOptions lr{tr.lr, tr.min_lr, tr.warmup_steps, tr.steps, tr.schedule};
  ckpt.meta["lr_schedule"] = nlohmann::json{{"schedule", lr.kind}, {"lr", lr.lr}, {"min_lr", lr.min_lr},
                                            {"warmup_steps", lr.warmup_steps}, {"steps", lr.total_steps},
                                            {"next_step", step_}, {"next_lr", learning_rate(lr, step_)}}.dump();
  ckpt.meta["mesh"] = mesh_ ? cat(mesh_->dims().describe(), " (", mesh_->world().size(), " ranks)")
                            : std::string("one process");
  ckpt.meta["rng"] = cat("per-step generators seeded from (seed=", recipe_.seed,
                         ", step, micro-batch); data order from (seed, epoch)");
  ckpt.meta["recipe"] = to_yaml(recipe_);
  std::string path = checkpoint_path(recipe_.run.dir, step_);
  // Every tensor of ckpt is a host copy (never a view of a parameter, moment or EMA shadow), so
  // the write may run while the next steps change them.
  auto write = [path, ckpt = std::move(ckpt), run = recipe_.run, tr = recipe_.trainer]() {
    // HDF5 is not thread-safe and the loader's threads read shards concurrently.
    std::lock_guard<std::recursive_mutex> lock(data::hdf5_mutex());
    reel::trainer::save_checkpoint(path, ckpt);
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
  auto rng = ckpt.tensors.find("rng/torch_cpu");
  if (rng != ckpt.tensors.end()) {
    at::Generator global = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
    global.set_state(rng->second);
  }
  auto pos = ckpt.meta.find("data_position");
  if (pos == ckpt.meta.end()) fail(path, ": checkpoint has no data_position; it cannot be resumed exactly");
  step_ = ckpt.step;
  const nlohmann::json j = nlohmann::json::parse(pos->second);
  if (j.contains("global_batch") && j.at("global_batch").get<int64_t>() != recipe_.data.batch_size) {
    fail(path, " was written with data.batch_size = ", j.at("global_batch").get<int64_t>(), " but the recipe has ",
         recipe_.data.batch_size, ": its data position counts global batches of the old size; resume with "
         "data.batch_size=", j.at("global_batch").get<int64_t>(), " (any mesh splits it)");
  }
  data::LoaderPosition start;
  start.epoch = j.at("epoch").get<int64_t>();
  start.batch = j.at("batch").get<int64_t>();
  return start;
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
