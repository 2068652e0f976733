// Training the temporal autoencoder (model.name: tae) on a pixel dataset: reconstruction (L1),
// structure (finite differences), KL, the outlier penalty and, after a warm-up, a 3D patch
// discriminator's adversarial loss (hinge), with the same run directory, metrics.jsonl,
// checkpoints, exact resume and validation cadence as the video trainer. One process.
//
// Checkpoint tensors: "model/..." (the TAE), "optim/..." (its AdamW state), "disc/..." and
// "disc_optim/..." (the discriminator and its AdamW state, when tae_loss.adversarial > 0),
// "rng/torch_cpu"; meta "recipe", "data_position", "lr_schedule".
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "data/loader.h"
#include "model/tae.h"
#include "parallel/data_parallel.h"
#include "parallel/fsdp.h"
#include "parallel/mesh.h"
#include "trainer/metrics.h"
#include "trainer/recipe.h"
#include "trainer/trainer.h"

namespace reel::trainer {

// The TAE options of the recipe's model.tae section (checked: UserError naming the key).
model::TaeOptions tae_options(const Recipe& recipe);

// A TAE built from a checkpoint's own recipe (meta "recipe"), its weights loaded, in eval mode.
model::TaeModel load_tae(const std::string& checkpoint);

// Pixels of clips, uint8 (F, H, W, 3) each -> float (B, 3, F, H, W) in [-1, 1].
torch::Tensor to_pixels(const std::vector<torch::Tensor>& clips);

struct TaeScores {
  double psnr = 0, ssim = 0, l1 = 0;  // means over the clips (PSNR in dB, of each clip's MSE)
  int64_t clips = 0;
};
struct TaeValidation {
  TaeScores all;
  std::map<std::string, TaeScores> buckets;  // by bucket name ("8x16x16"); 1-frame ones are images
};

// Reconstructs clips through the latent mean (no sampling) and scores them: every clip of `data`
// (clips_per_bucket <= 0) or the first clips_per_bucket of each bucket. `each` (optional) sees
// every batch: its bucket, originals and reconstructions, pixels in [-1, 1].
TaeValidation validate_tae(
    model::TaeModel& tae, const data::Dataset& data, int64_t clips_per_bucket, int64_t batch_size,
    const std::function<void(const data::Bucket&, const torch::Tensor&, const torch::Tensor&)>& each = {});

// `reel eval tae`: every clip of `data_dir`/val (or of `data_dir` itself when it has no val/)
// reconstructed by the checkpoint's TAE; writes `out_dir`/eval_tae.json ({"psnr", "ssim", "l1",
// "clips", "buckets": {name: scores}, "images": scores of the 1-frame buckets, "videos": of the
// others}) and, for the first `videos_per_bucket` clips of each bucket, an MP4 of the original
// (left) beside its reconstruction (right). Returns the JSON.
nlohmann::json run_tae_eval(const std::string& checkpoint, const std::string& data_dir, const std::string& out_dir,
                            int64_t videos_per_bucket = 2, int scale = 8);

class TaeTrainer {
 public:
  // Opens the data, builds the TAE (and discriminator), resumes from the run's latest checkpoint
  // with `resume`. UserError for a bad dataset, options or checkpoint. Under mpirun (`mesh`), the
  // data-parallel ranks (dp_replicate x dp_shard; tp and cp must be 1) take their part of every
  // global batch, so every step is the one process's step on the whole batch (the noise of the KL
  // latent included). With dp_shard = 1 every rank holds the whole TAE and its optimizer state and
  // gradients are averaged (replicas). With dp_shard > 1 the TAE and its discriminator are FSDP
  // modules (parallel/fsdp.h) of one unit each: weights stay gathered, but the fp32 master weights
  // and AdamW state are 1/dp_shard per rank and gradients are reduce-scattered into them (HSDP over
  // dp_replicate); every rank then writes its part of each checkpoint (checkpoint_sharded.h).
  // Rank 0 validates and logs.
  TaeTrainer(Recipe recipe, bool resume, parallel::Mesh* mesh = nullptr);
  RunEnd run();
  int64_t step() const { return step_; }
  // One optimizer step (what run() does between logs), its losses and metrics into `rec`.
  void train_step(nlohmann::json& rec);

 private:
  void save_checkpoint();
  data::LoaderPosition load_checkpoint(const std::string& path);
  int agreed_preemption_signal();
  bool writer() const { return rank_ == 0; }

  // After backward: gradients averaged over the data ranks (replicas or FSDP), clipped to
  // `max_norm` when > 0 (returns the norm before), and the optimizer step taken.
  double apply_gradients(torch::nn::Module& module, parallel::Fsdp* fsdp, torch::optim::AdamW& opt,
                         double max_norm);
  void shard();  // FSDP over dp_shard (after a resume: the whole state is cut into shards)

  Recipe recipe_;
  model::TaeModel tae_{nullptr};
  model::TaeDiscriminator disc_{nullptr};
  std::unique_ptr<torch::optim::AdamW> opt_, disc_opt_;
  std::shared_ptr<const data::Dataset> train_data_, val_data_;
  std::unique_ptr<data::Loader> loader_;
  std::unique_ptr<MetricsLog> metrics_;
  int64_t step_ = 0;
  parallel::Mesh* mesh_ = nullptr;
  std::unique_ptr<parallel::DataParallel> dp_;  // over the replicas, when they are the only parallelism
  std::unique_ptr<parallel::Fsdp> fsdp_, disc_fsdp_;  // with dp_shard > 1
  parallel::Communicator* data_group_ = nullptr;     // every data rank (dp_replicate x dp_shard)
  int rank_ = 0, ranks_ = 1;                    // in that group
  int64_t test_preempt_step_ = -1;              // REEL_TEST_PREEMPT_AT_STEP
};

}  // namespace reel::trainer
