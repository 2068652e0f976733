// Dataset over a shard directory, and the Loader: seeded bucketed sampling per epoch, a rank's
// share of every global batch, and worker threads that deliver batches in ticket order.
#include "data/loader.h"

#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "data/internal/random.h"

namespace reel::data {
namespace fs = std::filesystem;

// ---- Dataset --------------------------------------------------------------------------------

Dataset Dataset::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("dataset directory '", dir, "' does not exist or is not a directory; write one with `reel data synth`");
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code type_ec;
    if (entry.is_regular_file(type_ec) && entry.path().extension() == ".h5") paths.push_back(entry.path().string());
  }
  if (ec) fail("cannot list dataset directory '", dir, "': ", ec.message());
  if (paths.empty()) fail("dataset directory '", dir, "' holds no shards (*.h5 files)");
  std::sort(paths.begin(), paths.end());

  Dataset data;
  data.dir_ = dir;
  std::vector<std::pair<Bucket, int64_t>> order;  // each shard's bucket and size, in index order
  if (shard_format(paths.front()) == kLatentShardFormat) {
    for (const std::string& path : paths) {
      if (shard_format(path) != kLatentShardFormat)
        fail("dataset '", dir, "' mixes latent shards with '", path, "', which is not one; keep pixels and ",
             "latents in different directories");
      data.latent_shards_.push_back(std::make_shared<LatentShardReader>(path));
    }
    auto latent_bucket = [](const LatentShardReader& r) {
      return Bucket{int(r.info().latent[1]), int(r.info().latent[2]), int(r.info().latent[3])};
    };
    std::stable_sort(data.latent_shards_.begin(), data.latent_shards_.end(),
                     [&](const auto& a, const auto& b) { return latent_bucket(*a) < latent_bucket(*b); });
    for (const auto& s : data.latent_shards_) {
      if (s->info().latent[0] != data.latent_shards_.front()->info().latent[0])
        fail("dataset '", dir, "': latent shards of different channel counts (", s->info().latent[0], " in '",
             s->info().source, "'); encode every shard with the same TAE");
      order.push_back({latent_bucket(*s), s->size()});
    }
  } else {
    for (const std::string& path : paths) data.shards_.push_back(std::make_shared<ShardReader>(path));
    std::stable_sort(data.shards_.begin(), data.shards_.end(),
                     [](const auto& a, const auto& b) { return a->bucket() < b->bucket(); });
    for (const auto& s : data.shards_) order.push_back({s->bucket(), s->size()});
  }
  int64_t offset = 0;
  for (const auto& [bucket, size] : order) {
    if (data.ranges_.empty() || data.ranges_.back().bucket != bucket) data.ranges_.push_back({bucket, offset, offset});
    offset += size;
    data.offsets_.push_back(offset);
    data.ranges_.back().end = offset;
  }
  return data;
}

std::pair<size_t, int64_t> Dataset::find(int64_t index) const {
  if (index < 0 || index >= size())
    fail("sample index ", index, " is out of range for dataset '", dir_, "' with ", size(), " samples");
  const size_t s = size_t(std::upper_bound(offsets_.begin(), offsets_.end(), index) - offsets_.begin());
  return {s, index - (s == 0 ? 0 : offsets_[s - 1])};
}

void Dataset::check_pixels(const char* what) const {
  if (latents()) fail("dataset '", dir_, "' holds latents (`reel data encode`), not pixels: ", what, " needs pixels");
}

int64_t Dataset::channels() const { return latents() ? latent_shards_.front()->info().latent[0] : 3; }

torch::Tensor Dataset::read_input(int64_t index) const {
  auto [s, local] = find(index);
  if (latents()) return latent_shards_[s]->read(local);
  return shards_[s]->read_pixels(local).permute({3, 0, 1, 2}).to(torch::kFloat32).div_(127.5).sub_(1.0);
}

std::vector<Bucket> Dataset::buckets() const {
  std::vector<Bucket> out;
  for (const BucketRange& r : ranges_) out.push_back(r.bucket);
  return out;
}

std::pair<const ShardReader*, int64_t> Dataset::locate(int64_t index) const {
  check_pixels("reading whole clips");
  auto [s, local] = find(index);
  return {shards_[s].get(), local};
}

Clip Dataset::get(int64_t index) const {
  auto [shard, local] = locate(index);
  return shard->read(local);
}

Bucket Dataset::bucket_of(int64_t index) const {
  const size_t s = find(index).first;
  const auto it = std::upper_bound(ranges_.begin(), ranges_.end(), offsets_[s] - 1,
                                   [](int64_t i, const BucketRange& r) { return i < r.end; });
  return it->bucket;
}

const std::string& Dataset::caption(int64_t index) const {
  auto [s, local] = find(index);
  return latents() ? latent_shards_[s]->caption(local) : shards_[s]->caption(local);
}

int Dataset::fps(int64_t index) const {
  auto [s, local] = find(index);
  return latents() ? latent_shards_[s]->fps(local) : shards_[s]->fps(local);
}

const Truth& Dataset::truth(int64_t index) const {
  auto [shard, local] = locate(index);
  return shard->truth(local);
}

// ---- Loader ---------------------------------------------------------------------------------

struct Loader::Plan {
  std::vector<std::vector<int64_t>> order;        // per bucket range: its indices, permuted
  std::vector<std::pair<size_t, int64_t>> batches;  // (bucket range, k): global batch k of that bucket
};

Loader::Loader(std::shared_ptr<const Dataset> data, LoaderOptions options, LoaderPosition start)
    : data_(std::move(data)), options_(options) {
  REEL_CHECK(data_ != nullptr, "Loader needs a dataset");
  const LoaderOptions& o = options_;
  if (o.batch_size < 1) fail("loader: batch_size = ", o.batch_size, " must be at least 1");
  if (o.world_size < 1) fail("loader: world_size = ", o.world_size, " must be at least 1");
  if (o.rank < 0 || o.rank >= o.world_size)
    fail("loader: rank = ", o.rank, " must lie in [0, world_size = ", o.world_size, ")");
  if (o.workers < 0) fail("loader: workers = ", o.workers, " must not be negative (0 reads inside next())");
  if (o.prefetch < 1) fail("loader: prefetch = ", o.prefetch, " must be at least 1");

  if (o.pin_memory && !torch::cuda::is_available())
    fail("loader: pin_memory needs a CUDA build of LibTorch and a visible GPU; this process has neither");
  if (!std::isfinite(o.image_ratio)) fail("loader: image_ratio = ", o.image_ratio, " must be a number");
  if (o.budget < 0) fail("loader: budget = ", o.budget, " must be 0 (batch_size) or positive");
  const Dataset::BucketRange* largest = nullptr;
  int64_t video_batches = 0, image_batches = 0;
  for (const Dataset::BucketRange& r : data_->bucket_ranges()) {
    const int64_t per_rank = o.budget > 0 ? std::max<int64_t>(1, o.budget / r.bucket.pixels() / o.world_size)
                                          : int64_t(o.batch_size);
    range_batch_.push_back(per_rank * o.world_size);
    ((r.bucket.frames == 1) ? image_batches : video_batches) += (r.end - r.begin) / range_batch_.back();
    if (!largest || r.end - r.begin > largest->end - largest->begin) largest = &r;
  }
  const std::string batch_text =
      o.budget > 0 ? cat("a budget of ", o.budget, " frame x height x width elements over ", o.world_size, " ranks")
                   : cat(int64_t(o.batch_size) * o.world_size, " samples (batch_size ", o.batch_size, " x world_size ",
                         o.world_size, ")");
  batches_per_epoch_ = video_batches + image_batches;
  if (o.image_ratio >= 0 && batches_per_epoch_ > 0) {
    if (video_batches == 0)
      fail("loader: image_ratio = ", o.image_ratio, " mixes images into video batches, but dataset '", data_->dir(),
           "' has no video bucket with a global batch of ", batch_text, "; set data.image_ratio to -1");
    image_batches_ = std::llround(double(video_batches) * o.image_ratio);
    if (image_batches_ > 0 && image_batches == 0)
      fail("loader: image_ratio = ", o.image_ratio, " asks for image batches, but dataset '", data_->dir(),
           "' has no 1-frame bucket with a global batch of ", batch_text, "; set it to 0 or add images");
    batches_per_epoch_ = video_batches + image_batches_;
  }
  if (batches_per_epoch_ == 0)
    fail("loader: no bucket of dataset '", data_->dir(), "' holds one global batch of ", batch_text, "; the largest, ",
         largest ? largest->bucket.name() : std::string("none"), ", has ",
         largest ? largest->end - largest->begin : 0, "; lower batch_size or add data");
  if (start.epoch < 0 || start.batch < 0 || start.batch >= batches_per_epoch_)
    fail("loader: start position (epoch ", start.epoch, ", batch ", start.batch, ") lies outside an epoch of ",
         batches_per_epoch_, " batches; was the dataset, batch_size or world_size changed since it was saved?");
  consumed_ = claimed_ = start.epoch * batches_per_epoch_ + start.batch;
  for (int w = 0; w < o.workers; ++w) workers_.emplace_back([this] { work(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

std::shared_ptr<const Loader::Plan> Loader::plan(int64_t epoch) const {
  auto plan = std::make_shared<Plan>();
  std::mt19937_64 rng(detail::mix({options_.seed, uint64_t(epoch)}));
  const auto& ranges = data_->bucket_ranges();
  for (size_t b = 0; b < ranges.size(); ++b) {
    std::vector<int64_t> indices(size_t(ranges[b].end - ranges[b].begin));
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = ranges[b].begin + int64_t(i);
    if (options_.shuffle) detail::shuffle(indices, rng);
    for (int64_t k = 0; k < int64_t(indices.size()) / range_batch_[b]; ++k) plan->batches.push_back({b, k});
    plan->order.push_back(std::move(indices));
  }
  if (image_batches_ >= 0) {  // every video batch, and image batches cycled to the ratio's count
    std::vector<std::pair<size_t, int64_t>> images, mixed;
    for (const auto& batch : plan->batches) (ranges[batch.first].bucket.frames == 1 ? images : mixed).push_back(batch);
    if (options_.shuffle) detail::shuffle(images, rng);
    for (int64_t i = 0; i < image_batches_; ++i) mixed.push_back(images[size_t(i) % images.size()]);
    plan->batches = std::move(mixed);
  }
  if (options_.shuffle) detail::shuffle(plan->batches, rng);
  REEL_CHECK(int64_t(plan->batches.size()) == batches_per_epoch_, "epoch plan has ", plan->batches.size(),
             " batches, expected ", batches_per_epoch_);
  return plan;
}

std::vector<int64_t> Loader::global_batch(LoaderPosition position) const {
  if (position.epoch < 0 || position.batch < 0 || position.batch >= batches_per_epoch_)
    fail("loader: position (epoch ", position.epoch, ", batch ", position.batch, ") lies outside an epoch of ",
         batches_per_epoch_, " batches");
  std::shared_ptr<const Plan> p = plan(position.epoch);
  auto [bucket, k] = p->batches[size_t(position.batch)];
  auto first = p->order[bucket].begin() + k * range_batch_[bucket];
  return std::vector<int64_t>(first, first + range_batch_[bucket]);
}

int64_t Loader::global_batch_size(const Bucket& bucket) const {
  const auto& ranges = data_->bucket_ranges();
  for (size_t b = 0; b < ranges.size(); ++b)
    if (ranges[b].bucket == bucket) return range_batch_[b];
  fail("loader: dataset '", data_->dir(), "' has no bucket ", bucket.name());
}

std::vector<int64_t> Loader::rank_indices(int64_t ticket) {
  const int64_t epoch = ticket / batches_per_epoch_, batch = ticket % batches_per_epoch_;
  // Plans of epochs before the one next() is in are no longer needed.
  plans_.erase(plans_.begin(), plans_.lower_bound(consumed_ / batches_per_epoch_));
  auto it = plans_.find(epoch);
  if (it == plans_.end()) it = plans_.emplace(epoch, plan(epoch)).first;
  auto [bucket, k] = it->second->batches[size_t(batch)];
  const int64_t per_rank = range_batch_[bucket] / options_.world_size;
  auto first = it->second->order[bucket].begin() + k * range_batch_[bucket] + int64_t(options_.rank) * per_rank;
  return std::vector<int64_t>(first, first + per_rank);
}

Batch Loader::collate(const std::vector<int64_t>& indices) const {
  Batch batch;
  batch.indices = indices;
  batch.bucket = data_->bucket_of(indices.at(0));
  if (data_->latents()) {  // (B, C, T, H, W) as stored
    std::vector<torch::Tensor> xs;
    batch.fps = torch::empty({int64_t(indices.size())}, torch::kInt64);
    for (size_t i = 0; i < indices.size(); ++i) {
      REEL_CHECK(data_->bucket_of(indices[i]) == batch.bucket, "sample ", indices[i], " in a batch of bucket ",
                 batch.bucket.name());
      xs.push_back(data_->read_input(indices[i]));
      batch.captions.push_back(data_->caption(indices[i]));
      batch.fps[int64_t(i)] = data_->fps(indices[i]);
    }
    batch.pixels = torch::stack(xs);
    if (options_.pin_memory) batch.pixels = batch.pixels.pin_memory();
    return batch;
  }
  const Bucket& b = batch.bucket;
  const int64_t n = int64_t(indices.size()), sample_bytes = b.pixels() * 3;
  torch::Tensor raw = torch::empty({n, b.frames, b.height, b.width, 3}, torch::kUInt8);  // (B, F, H, W, 3)
  batch.fps = torch::empty({n}, torch::kInt64);
  int64_t* fps = batch.fps.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    auto [shard, local] = data_->locate(indices[i]);
    REEL_CHECK(shard->bucket() == b, "sample ", indices[i], " of bucket ", shard->bucket().name(),
               " in a batch of bucket ", b.name());
    torch::Tensor pixels = shard->read_pixels(local);
    std::memcpy(raw.data_ptr<uint8_t>() + i * sample_bytes, pixels.data_ptr<uint8_t>(), size_t(sample_bytes));
    batch.captions.push_back(shard->caption(local));
    fps[i] = shard->fps(local);
  }
  batch.pixels = torch::empty({n, 3, b.frames, b.height, b.width},  // (B, 3, F, H, W)
                              torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(options_.pin_memory));
  batch.pixels.copy_(raw.permute({0, 4, 1, 2, 3})).div_(127.5).sub_(1.0);
  return batch;
}

void Loader::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || claimed_ < consumed_ + options_.prefetch; });
    if (stop_) return;
    const int64_t ticket = claimed_++;
    Slot slot;
    try {
      std::vector<int64_t> indices = rank_indices(ticket);
      lock.unlock();
      slot.batch = collate(indices);
    } catch (...) {
      slot.error = std::current_exception();
    }
    if (!lock.owns_lock()) lock.lock();
    ready_.emplace(ticket, std::move(slot));
    cv_.notify_all();
  }
}

Batch Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (workers_.empty() && !ready_.count(consumed_)) {
    Slot slot;
    try {
      slot.batch = collate(rank_indices(consumed_));
    } catch (...) {
      slot.error = std::current_exception();
    }
    ready_.emplace(consumed_, std::move(slot));
  }
  cv_.wait(lock, [&] { return ready_.count(consumed_) > 0; });
  auto it = ready_.find(consumed_);
  if (it->second.error) std::rethrow_exception(it->second.error);  // the slot stays: later calls fail too
  Batch batch = std::move(it->second.batch);
  ready_.erase(it);
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  return batch;
}

LoaderPosition Loader::position() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {consumed_ / batches_per_epoch_, consumed_ % batches_per_epoch_};
}

}  // namespace reel::data
