// The training loop for the text-to-video task: data -> flow matching -> AdamW, with gradient
// accumulation, clipping, EMA, the LR schedule, validation at fixed t, metrics, checkpoints and
// exact resume.
//
// Determinism: every random draw of step s (noise, t, caption dropout) comes from a generator
// seeded with mix(seed, s, micro-batch), and the data order from (seed, epoch); so the state to
// resume is the step and the loader position, both saved in every checkpoint.
#pragma once

#include <torch/torch.h>

#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/loader.h"
#include "data/text_cache.h"
#include "model/t2v.h"
#include "parallel/data_parallel.h"
#include "parallel/fsdp.h"
#include "parallel/mesh.h"
#include "trainer/ema.h"
#include "trainer/flow_matching.h"
#include "trainer/metrics.h"
#include "trainer/checkpoint_sharded.h"
#include "trainer/parallelize.h"
#include "trainer/recipe.h"
#include "trainer/schedule.h"

namespace reel::trainer {

struct Checkpoint;

struct StepStats {
  int64_t step = 0;         // the optimizer step just taken (1-based)
  double loss = 0;          // mean flow-matching loss over the micro-batches
  double grad_norm = 0;     // global norm before clipping
  double lr = 0;
  int64_t samples = 0;      // samples processed in this step (the global batch, every replica)
  int64_t tokens = 0;       // transformer tokens processed in this step
  double flops = 0;         // model FLOPs of this step on this rank (forward + backward)
  double seconds = 0;       // wall time of the step
  double comm_seconds = 0;  // of which blocked waiting on collectives (every group: FSDP, DP, TP, CP)
  bool skipped = false;     // the loss or gradient norm was not finite: no update (every rank alike)
};

enum class RunEnd { kFinished, kPreempted };

struct ValidationResult {
  std::vector<double> t;          // the fixed times, (k + 0.5) / 8
  std::vector<double> loss_at_t;  // mean loss at each t
  double loss = 0;                // mean over t
  // The same with every caption empty: loss_uncond - loss is what the captions are worth to the
  // model (near 0 means it ignores its text).
  double loss_uncond = 0;
  int64_t samples = 0;
};

// The fixed-t validation loss of `model` on the first `max_samples` clips of `val` (spread
// evenly over it), with noise seeded per sample: the same number for the same weights.
ValidationResult validation_loss(model::T2VModel& model, const data::Dataset& val,
                                 const Recipe& recipe, int64_t max_samples);

// Context parallel (and tensor parallel with sequence_parallel) split every sample's tokens into
// cp x tp parts: UserError naming the first bucket whose token count they do not divide.
void check_token_split(const Recipe& recipe, const parallel::ParallelDims& dims, const std::vector<data::Bucket>& buckets);

class Trainer {
 public:
  // Builds the model, optimizer, data and run directory from the recipe. With resume, loads
  // the checkpoint `latest` names (if the run has one) and continues from it. With a `mesh`
  // every rank of its dp group takes its slice of each global batch: with dp_shard > 1 the
  // model is sharded (FSDP over the fsdp group, HSDP over the replicate group), otherwise the
  // gradients are averaged over the replicas; with tp > 1 the blocks are cut over the tp group
  // (trainer/parallelize.h) first, and its ranks see the same data; with cp > 1 every sample's
  // tokens are split over the cp group and FSDP shards over dp_shard x cp. Only world rank 0
  // writes files. `mesh` must outlive the trainer.
  Trainer(Recipe recipe, bool resume, parallel::Mesh* mesh = nullptr);

  // Trains until recipe.trainer.steps, logging, validating and checkpointing on the way. A
  // SIGUSR1 or SIGTERM on any rank (trainer/preemption.h) ends it after the current step, on
  // every rank alike, with a checkpoint of that step: kPreempted.
  RunEnd run();

  // One optimizer step (grad_accum micro-batches). Public for `reel bench step`.
  StepStats train_step();

  ValidationResult validate();
  // Writes <run.dir>/checkpoints/step_<N>.h5 and moves `latest`; returns the path. Collective
  // with FSDP or TP (the tensors are gathered on every rank; rank 0 writes). With `async` the
  // tensors are copied to host memory now and a background thread writes the file, moves
  // `latest` and prunes while training goes on; a previous background write is waited for first.
  std::string save_checkpoint(bool async = false);
  // Waits for a background checkpoint write; rethrows its error.
  void wait_for_save();
  ~Trainer();

  int64_t step() const { return step_; }
  const Recipe& recipe() const { return recipe_; }
  model::T2VModel& model() { return model_; }
  int64_t parameter_count() const;
  // Bytes this rank holds between steps: parameters, gradients, optimizer state and EMA.
  int64_t state_bytes() const;
  double matmul_flops() const { return matmul_flops_; }
  // The MFU reference measured again (matmul_reference: fp32 1024^3 on the CPU, the training
  // dtype at 8192^3 on a GPU).
  double measure_matmul_rate(double min_seconds) const;
  torch::Device device() const { return device_; }

 private:
  // Model, optimizer, EMA, RNG and step from a checkpoint; returns its data position.
  data::LoaderPosition load_checkpoint(const std::string& path);
  // --resume: the newest checkpoint that verifies (and the interrupted writes removed).
  data::LoaderPosition resume_latest();
  // recipe.init_from: a new stage's weights from another run (trainer/init_from.h).
  void initialize_from(const std::string& source);
  void load_text_weights();
  double schedule_lr(int64_t step) const;   // trainer.schedule's LR at `step`
  double scheduled_lr(int64_t step) const;  // schedule_lr, lowered by plateau_
  // trainer.plateau_*: counts a validation loss (the same on every rank) and lowers the LR after
  // plateau_patience validations without improvement.
  void observe_validation(double loss);  // model.text_encoders[].weights, at the start of a fresh run
  void shard_model();  // FSDP: the model, optimizer state and EMA sharded
  // parallel.tp > 1: the planned weights, their Adam moments and EMA cut to this rank's slices.
  void shard_tensor_parallel();
  // The gradients clipped by their global norm (over every shard and tp slice); returns the norm.
  double clip_gradients(double max_norm);
  void install_block_runner();
  void sync_copies();  // the batch threads' model copies <- model_'s trainable parameters
  // One micro-batch's forward and backward, its rows split over the batch threads; returns the
  // micro-batch's mean loss.
  // `encoded`: the cached slots' encoder outputs for `texts` (data.text_cache), else empty.
  double forward_backward(const torch::Tensor& xt, const torch::Tensor& t, const std::vector<std::string>& texts,
                          const model::EncodedText& encoded, const FlowPoint& p, const torch::Tensor& x1);
  // With a mesh: this rank's part of every checkpoint tensor (its FSDP spans, its tp slices), host
  // copies; of the ranks holding the same elements, one writes them. No communication.
  ShardedCheckpoint sharded_state() const;
  double step_flops(const data::Batch& batch) const;

  Recipe recipe_;
  std::string latent_tae_;  // a latent dataset's TAE (its latents.json), recorded in checkpoints
  model::T2VModel model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::optional<Ema> ema_;
  std::shared_ptr<const data::Dataset> train_data_;
  std::shared_ptr<const data::Dataset> val_data_;
  std::shared_ptr<const data::TextCache> text_cache_;  // data.text_cache, when set
  std::unique_ptr<data::Loader> loader_;
  std::unique_ptr<MetricsLog> metrics_;
  FlowMatchingOptions flow_;
  std::vector<torch::Tensor> params_;  // trainable parameters, in named_parameters() order
  // trainer.batch_threads > 1: the other threads' copies of the model, and their trainable
  // parameters in params_ order (thread 0 runs model_).
  std::vector<model::T2VModel> copies_;
  std::vector<std::vector<torch::Tensor>> copy_params_;
  int threads_per_copy_ = 1;
  int threads_ = 1;  // intra-op threads of the training thread (trainer.threads resolved)
  int64_t step_ = 0;                   // optimizer steps taken
  LrPlateau plateau_;  // trainer.plateau_* and its state (in checkpoints as meta lr_plateau)
  double matmul_flops_ = 0;            // this machine's measured matmul rate (the MFU reference)
  torch::Device device_{torch::kCPU};  // trainer.device: where the model, its state and the batches live
  parallel::Mesh* mesh_ = nullptr;                 // null: one process
  parallel::Communicator* data_group_ = nullptr;   // the ranks that take different samples, or none
  std::unique_ptr<parallel::DataParallel> dp_;     // replicas (dp_shard == 1), or none
  std::unique_ptr<parallel::Fsdp> fsdp_;           // FSDP / HSDP (dp_shard > 1), or none
  parallel::Communicator* tp_ = nullptr;           // tensor parallel (tp > 1), or none
  TensorParallelPlan tp_plan_;                     // the weights cut over tp_
  // tp > 1: each params_ entry's weight in the squared gradient norm summed over tp (1 for cut
  // weights, 1 / tp for whole ones, which every tp rank holds alike); laid out like it.
  std::vector<torch::Tensor> norm_weights_;
  bool writer_ = true;                 // writes recipe.yaml, metrics.jsonl and checkpoints
  std::thread save_thread_;            // a background checkpoint write (trainer.async_save)
  std::exception_ptr save_error_;      // its failure, rethrown by wait_for_save
  // With a mesh: a duplicate of the world's MPI communicator for checkpoint writes, which may run
  // in the background while the training thread's collectives go on.
  MPI_Comm save_comm_ = MPI_COMM_NULL;
  // The largest preemption signal any rank has received (0: none); collective with a mesh.
  int agreed_preemption_signal();
  // Test hook: REEL_TEST_PREEMPT_AT_STEP=N makes world rank 0 act as if signalled after step N.
  int64_t test_preempt_step_ = -1;
  // Test hook: REEL_TEST_NONFINITE_STEPS="3,4" makes world rank 0's loss NaN in those steps
  // (1-based), so the tests can check that every rank skips the update together.
  std::set<int64_t> test_nonfinite_steps_;
};

}  // namespace reel::trainer
