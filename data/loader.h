// Training data input: a dataset over a directory of shards, a bucketed, distributed, resumable
// sampler, and background threads that read and collate batches ahead of the trainer.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/latent_shards.h"
#include "data/shards.h"
#include "data/synth.h"

namespace reel::data {

// All shards under one directory (e.g. OUT/train), opened once: pixel shards ("reel-shard-1") or
// latent shards ("reel-latent-shard-1", from `reel data encode`), not both. Global indices run over
// the shards ordered by (bucket, file name), so the indices of one bucket are contiguous and their
// order is stable. A latent dataset's buckets are its latents' T x H x W. Immutable after open();
// all methods are thread-safe.
class Dataset {
 public:
  struct BucketRange {
    Bucket bucket;
    int64_t begin = 0, end = 0;  // global indices [begin, end)
  };

  // Opens every *.h5 file directly under `dir`. UserError if the directory is missing, holds no
  // shards, mixes pixel and latent shards or latent shapes of one bucket, or a shard is bad (the
  // message names it).
  static Dataset open(const std::string& dir);

  bool latents() const { return !latent_shards_.empty(); }
  int64_t channels() const;  // 3 (RGB) for pixels, C for latents
  // The model's input for a sample: float (C, F, H, W), pixels scaled to [-1, 1] or the latents.
  torch::Tensor read_input(int64_t index) const;

  const std::string& dir() const { return dir_; }
  int64_t size() const { return offsets_.empty() ? 0 : offsets_.back(); }
  std::vector<Bucket> buckets() const;                                      // ascending
  const std::vector<BucketRange>& bucket_ranges() const { return ranges_; }  // same order
  const std::vector<std::shared_ptr<ShardReader>>& shards() const { return shards_; }  // index order

  // UserError if index is outside [0, size()); get, truth and locate also for a latent dataset.
  Clip get(int64_t index) const;  // reads the pixels
  Bucket bucket_of(int64_t index) const;
  const std::string& caption(int64_t index) const;  // no I/O
  int fps(int64_t index) const;                     // no I/O
  const Truth& truth(int64_t index) const;          // no I/O
  // The shard holding `index` and the index inside it.
  std::pair<const ShardReader*, int64_t> locate(int64_t index) const;

 private:
  std::string dir_;
  std::pair<size_t, int64_t> find(int64_t index) const;  // shard and index inside it
  void check_pixels(const char* what) const;
  std::vector<std::shared_ptr<ShardReader>> shards_;                // pixel datasets
  std::vector<std::shared_ptr<LatentShardReader>> latent_shards_;  // latent datasets
  std::vector<int64_t> offsets_;  // offsets_[s] = first global index after shard s
  std::vector<BucketRange> ranges_;
};

struct Batch {
  Bucket bucket;
  torch::Tensor pixels;               // float32 (B, 3, F, H, W) scaled to [-1, 1]: x / 127.5 - 1; of a
                                      // latent dataset, its latents (B, C, T, H, W)
  std::vector<std::string> captions;  // raw captions, B
  torch::Tensor fps;                  // int64 (B)
  std::vector<int64_t> indices;       // global dataset indices, B, for exact-resume tests
};

struct LoaderOptions {
  int batch_size = 16;           // samples per rank per batch
  uint64_t seed = 0;             // sampling seed; the batch sequence is a function of it
  int rank = 0, world_size = 1;  // data-parallel rank/size: each takes its part of every global batch
  int workers = 2;               // background threads that read + collate; 0 reads inside next()
  int prefetch = 4;              // batches produced ahead of next(), at least 1
  bool shuffle = true;           // false: samples in index order, batches bucket by bucket
  // Image (1-frame) batches per video batch in every epoch, e.g. 0.1 for Movie Gen's 1:10; < 0:
  // as many as the data holds. With a ratio, an epoch is every video batch plus
  // round(ratio x video batches) image batches, drawn from the epoch's shuffled image batches
  // (cycling through them again when it needs more than there are).
  double image_ratio = -1;
  bool pin_memory = false;       // page-locked batch tensors, for fast copies to a GPU (CUDA builds)
  // > 0: a constant budget of frames x height x width elements per global batch instead of
  // batch_size: each bucket's global batch is floor(budget / (F x H x W)) samples, rounded down to
  // a multiple of world_size (at least world_size), so images come in larger batches than clips.
  int64_t budget = 0;
};

// The next global batch to produce: batch `batch` of epoch `epoch`.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const LoaderPosition& o) const { return epoch == o.epoch && batch == o.batch; }
};

// Sampling: each epoch draws a permutation of each bucket's indices seeded by (seed, epoch),
// cuts it into global batches of batch_size * world_size samples (dropping each bucket's
// incomplete tail), mixes images and videos as image_ratio says, and shuffles the list of global
// batches (seeded by (seed, epoch)) so buckets interleave. Rank r takes samples [r * batch_size, (r + 1) * batch_size) of each global batch.
// Every epoch has batches_per_epoch() batches; epochs roll over by themselves.
//
// Batches come in this order whatever `workers` is. Loader(data, options, loader.position())
// continues exactly where `loader` stands. An exception thrown while reading a batch (a
// corrupted shard) is re-thrown by the next() that would have returned that batch, and by every
// later next(). Not thread-safe: one thread calls next().
class Loader {
 public:
  // UserError on bad options, a position outside an epoch, or a dataset without a single
  // global batch in any bucket.
  Loader(std::shared_ptr<const Dataset> data, LoaderOptions options, LoaderPosition start = {});
  ~Loader();  // stops and joins the worker threads
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  Batch next();  // blocks until the next batch is ready
  LoaderPosition position() const;  // after the last batch returned by next(): save it in checkpoints
  int64_t batches_per_epoch() const { return batches_per_epoch_; }

  // The global indices of global batch `position` (all ranks), a pure function of the dataset,
  // seed, batch_size (or budget) and world_size. UserError outside an epoch.
  std::vector<int64_t> global_batch(LoaderPosition position) const;
  // The global batch size of a bucket (batch_size x world_size, or from the budget).
  int64_t global_batch_size(const Bucket& bucket) const;

 private:
  struct Plan;  // one epoch's permuted indices and batch order
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::vector<int64_t> rank_indices(int64_t ticket);  // lock held
  std::shared_ptr<const Plan> plan(int64_t epoch) const;
  Batch collate(const std::vector<int64_t>& indices) const;
  void work();

  std::shared_ptr<const Dataset> data_;
  LoaderOptions options_;
  std::vector<int64_t> range_batch_;  // global batch size per bucket range of the dataset
  int64_t batches_per_epoch_ = 0;
  int64_t image_batches_ = -1;  // image batches per epoch when image_ratio >= 0

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int64_t consumed_ = 0;  // ticket (epoch * batches_per_epoch + batch) of the next batch next() returns
  int64_t claimed_ = 0;   // next ticket a worker will take
  bool stop_ = false;
  std::map<int64_t, Slot> ready_;                        // finished batches by ticket
  std::map<int64_t, std::shared_ptr<const Plan>> plans_;  // recent epochs' plans
  std::vector<std::thread> workers_;
};

}  // namespace reel::data
