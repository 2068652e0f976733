// Dataset and Loader: batch contents, deterministic order whatever the workers, exact resume,
// rank partition, bucket purity, epoch rollover, and errors from worker threads.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "tests/test_util.h"
#include "data/loader.h"
#include "data/synth.h"

using namespace reel::data;
namespace fs = std::filesystem;
using reel::testing::expect_user_error;

namespace {

// Train split: 4x8x8 x 37, 1x8x8 x 29, 2x8x12 x 21 clips in shards of 10.
class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("reel_loader_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "train");
    SynthOptions o;  // one dataset per bucket (they differ in size), shards gathered in train/
    o.val_per_bucket = 0;
    o.samples_per_shard = 10;
    o.seed = 3;
    o.threads = 2;
    for (auto [bucket, count] : {std::pair<Bucket, int>{{4, 8, 8}, 37}, {{1, 8, 8}, 29}, {{2, 8, 12}, 21}}) {
      o.buckets = {bucket};
      o.train_per_bucket = count;
      o.out_dir = (root_ / "parts" / bucket.name()).string();
      write_synth_dataset(o);
      for (const auto& e : fs::directory_iterator(root_ / "parts" / bucket.name() / "train"))
        fs::copy_file(e.path(), root_ / "train" / e.path().filename());
    }
    data_ = std::make_shared<const Dataset>(Dataset::open((root_ / "train").string()));
  }
  static void TearDownTestSuite() {
    data_.reset();
    fs::remove_all(root_);
  }

  static LoaderOptions options(int batch_size, int workers = 2, uint64_t seed = 1) {
    LoaderOptions o;
    o.batch_size = batch_size;
    o.workers = workers;
    o.seed = seed;
    return o;
  }

  static std::vector<std::vector<int64_t>> run(Loader& loader, int batches) {
    std::vector<std::vector<int64_t>> out;
    for (int i = 0; i < batches; ++i) out.push_back(loader.next().indices);
    return out;
  }

  static fs::path root_;
  static std::shared_ptr<const Dataset> data_;
};

fs::path LoaderTest::root_;
std::shared_ptr<const Dataset> LoaderTest::data_;


}  // namespace

TEST_F(LoaderTest, DatasetIndexesBucketsContiguously) {
  const Dataset& d = *data_;
  EXPECT_EQ(d.size(), 37 + 29 + 21);
  EXPECT_EQ(d.buckets(), (std::vector<Bucket>{{1, 8, 8}, {2, 8, 12}, {4, 8, 8}}));
  const auto& ranges = d.bucket_ranges();
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[0].begin, 0);
  EXPECT_EQ(ranges[0].end, 29);
  EXPECT_EQ(ranges[1].end, 29 + 21);
  EXPECT_EQ(ranges[2].end, 87);
  EXPECT_EQ(d.shards().size(), 3u + 3u + 4u);
  for (const auto& r : ranges)
    for (int64_t i = r.begin; i < r.end; ++i) EXPECT_EQ(d.bucket_of(i), r.bucket);
  // Index order is shard-name order inside a bucket: index 29 + 10 is the first clip of 2x8x12_00001.h5.
  auto [shard, local] = d.locate(39);
  EXPECT_EQ(fs::path(shard->path()).filename(), "2x8x12_00001.h5");
  EXPECT_EQ(local, 0);
  ShardReader direct((root_ / "train" / "2x8x12_00001.h5").string());
  Clip a = d.get(39), b = direct.read(0);
  EXPECT_TRUE(torch::equal(a.pixels, b.pixels));
  EXPECT_EQ(a.caption, b.caption);
  EXPECT_EQ(d.caption(39), b.caption);
  EXPECT_EQ(d.truth(39).centers, b.truth.centers);
  expect_user_error([&] { d.get(87); }, "out of range");
}

TEST_F(LoaderTest, DatasetOpenRefusesMissingEmptyAndBadDirectories) {
  expect_user_error([&] { Dataset::open((root_ / "nope").string()); }, (root_ / "nope").string());
  fs::create_directories(root_ / "empty");
  expect_user_error([&] { Dataset::open((root_ / "empty").string()); }, "no shards");
  fs::create_directories(root_ / "junk");
  fs::copy_file(root_ / "train" / "1x8x8_00000.h5", root_ / "junk" / "1x8x8_00000.h5");
  reel::write_file_atomic((root_ / "junk" / "zz.h5").string(), "not hdf5");
  expect_user_error([&] { Dataset::open((root_ / "junk").string()); }, (root_ / "junk" / "zz.h5").string());
}

TEST_F(LoaderTest, BatchesHaveTheRightShapesValuesAndBucket) {
  Loader loader(data_, options(4));
  std::set<std::string> buckets_seen;
  for (int n = 0; n < 12; ++n) {
    Batch batch = loader.next();
    const Bucket& b = batch.bucket;
    buckets_seen.insert(b.name());
    ASSERT_EQ(batch.pixels.sizes(), torch::IntArrayRef({4, 3, b.frames, b.height, b.width}));
    EXPECT_EQ(batch.pixels.scalar_type(), torch::kFloat32);
    EXPECT_GE(batch.pixels.min().item<float>(), -1.0f);
    EXPECT_LE(batch.pixels.max().item<float>(), 1.0f);
    EXPECT_EQ(batch.fps.scalar_type(), torch::kInt64);
    ASSERT_EQ(batch.fps.sizes(), torch::IntArrayRef({4}));
    ASSERT_EQ(batch.indices.size(), 4u);
    ASSERT_EQ(batch.captions.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(data_->bucket_of(batch.indices[i]), b);  // buckets never mix
      Clip clip = data_->get(batch.indices[i]);
      torch::Tensor want = clip.pixels.permute({3, 0, 1, 2}).to(torch::kFloat32) / 127.5 - 1;  // (3, F, H, W)
      EXPECT_TRUE(torch::allclose(batch.pixels[i], want, 0, 1e-6));
      EXPECT_EQ(batch.captions[i], clip.caption);
      EXPECT_EQ(batch.fps[i].item<int64_t>(), clip.fps);
    }
  }
  EXPECT_EQ(buckets_seen.size(), 3u);  // buckets interleave
}

TEST_F(LoaderTest, SameSeedSameSequenceWhateverTheWorkers) {
  Loader reference(data_, options(3, 0));
  const auto want = run(reference, 70);  // past the end of the first epoch
  for (int workers : {1, 3}) {
    LoaderOptions o = options(3, workers);
    o.prefetch = workers == 1 ? 1 : 6;
    Loader loader(data_, o);
    EXPECT_EQ(run(loader, 70), want) << workers << " workers";
  }
  Loader other(data_, options(3, 2, 2));
  EXPECT_NE(run(other, 70), want);
}

TEST_F(LoaderTest, ResumeFromPositionContinuesExactly) {
  Loader first(data_, options(2));
  const int64_t per_epoch = first.batches_per_epoch();
  for (int64_t k : {int64_t(0), int64_t(5), per_epoch - 2, per_epoch + 3}) {
    Loader loader(data_, options(2));
    run(loader, int(k));
    const LoaderPosition at = loader.position();
    EXPECT_EQ(at.epoch * per_epoch + at.batch, k);
    std::vector<Batch> rest;
    for (int i = 0; i < 6; ++i) rest.push_back(loader.next());
    Loader resumed(data_, options(2, 3), at);
    EXPECT_EQ(resumed.position(), at);
    for (int i = 0; i < 6; ++i) {
      Batch b = resumed.next();
      EXPECT_EQ(b.indices, rest[i].indices) << "resumed at " << k << ", batch " << i;
      EXPECT_TRUE(torch::equal(b.pixels, rest[i].pixels));
    }
    EXPECT_EQ(resumed.position(), loader.position());
  }
}

TEST_F(LoaderTest, RanksSplitEachGlobalBatch) {
  LoaderOptions whole = options(6);
  Loader single(data_, whole);
  std::vector<std::unique_ptr<Loader>> ranks;
  for (int r = 0; r < 2; ++r) {
    LoaderOptions o = options(3);
    o.rank = r;
    o.world_size = 2;
    ranks.push_back(std::make_unique<Loader>(data_, o));
  }
  EXPECT_EQ(single.batches_per_epoch(), ranks[0]->batches_per_epoch());
  for (int n = 0; n < 2 * single.batches_per_epoch(); ++n) {
    Batch g = single.next(), r0 = ranks[0]->next(), r1 = ranks[1]->next();
    EXPECT_EQ(r0.bucket, g.bucket);
    EXPECT_EQ(r1.bucket, g.bucket);
    std::vector<int64_t> both = r0.indices;
    both.insert(both.end(), r1.indices.begin(), r1.indices.end());
    EXPECT_EQ(both, g.indices) << "global batch " << n;
    std::set<int64_t> distinct(both.begin(), both.end());
    EXPECT_EQ(distinct.size(), 6u);
    EXPECT_EQ(g.indices, single.global_batch({n / single.batches_per_epoch(), n % single.batches_per_epoch()}));
  }
}

TEST_F(LoaderTest, EpochsRollOverWithFreshOrderAndNoRepeats) {
  Loader loader(data_, options(4));
  // floor(29 / 4) + floor(21 / 4) + floor(37 / 4) global batches per epoch.
  ASSERT_EQ(loader.batches_per_epoch(), 7 + 5 + 9);
  std::vector<std::vector<int64_t>> epochs(2);
  for (int e = 0; e < 2; ++e) {
    std::map<std::string, int> per_bucket;
    for (int n = 0; n < loader.batches_per_epoch(); ++n) {
      Batch b = loader.next();
      per_bucket[b.bucket.name()] += 4;
      epochs[e].insert(epochs[e].end(), b.indices.begin(), b.indices.end());
    }
    EXPECT_EQ(loader.position(), (LoaderPosition{e + 1, 0}));
    EXPECT_EQ(std::set<int64_t>(epochs[e].begin(), epochs[e].end()).size(), epochs[e].size());  // no repeats
    EXPECT_EQ(per_bucket["1x8x8"], 28);
    EXPECT_EQ(per_bucket["2x8x12"], 20);
    EXPECT_EQ(per_bucket["4x8x8"], 36);
  }
  EXPECT_NE(epochs[0], epochs[1]);
  const std::set<int64_t> used0(epochs[0].begin(), epochs[0].end()), used1(epochs[1].begin(), epochs[1].end());
  EXPECT_NE(used0, used1) << "different tails should be dropped in different epochs";
  EXPECT_EQ(loader.next().indices, loader.global_batch({2, 0}));
}

TEST_F(LoaderTest, WithoutShuffleSamplesComeInIndexOrder) {
  LoaderOptions o = options(5);
  o.shuffle = false;
  Loader loader(data_, o);
  int64_t expect = 0;
  for (int n = 0; n < 5; ++n) {  // 1x8x8: 29 clips -> 5 batches of 5
    Batch b = loader.next();
    for (int64_t i : b.indices) EXPECT_EQ(i, expect++);
  }
  EXPECT_EQ(loader.next().indices.front(), 29);  // then 2x8x12
}

TEST_F(LoaderTest, RefusesImpossibleOptionsAndPositions) {
  expect_user_error([&] { Loader l(data_, options(38)); }, "global batch of 38");
  LoaderOptions o = options(4);
  o.world_size = 10;
  expect_user_error([&] { Loader l(data_, o); }, "world_size 10");
  o = options(4);
  o.rank = 2;
  o.world_size = 2;
  expect_user_error([&] { Loader l(data_, o); }, "rank = 2");
  expect_user_error([&] { Loader l(data_, options(0)); }, "batch_size");
  expect_user_error([&] { Loader l(data_, options(4), {0, 21}); }, "outside an epoch");
}

// A shard damaged after the dataset was opened: the worker's read error reaches next().
TEST_F(LoaderTest, WorkerErrorsAreRethrownFromNext) {
  fs::path copy = root_ / "damaged";
  fs::create_directories(copy);
  for (const auto& e : fs::directory_iterator(root_ / "train")) fs::copy_file(e.path(), copy / e.path().filename());
  auto data = std::make_shared<const Dataset>(Dataset::open(copy.string()));
  const std::string victim = (copy / "4x8x8_00001.h5").string();
  {
    const auto size = fs::file_size(victim);
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2048);
    std::string junk(size - 2048, '\xa5');
    f.write(junk.data(), std::streamsize(junk.size()));
  }
  Loader loader(data, options(4, 2));
  int64_t served = 0;
  try {
    for (; served < loader.batches_per_epoch(); ++served) loader.next();
    ADD_FAILURE() << "a whole epoch read without touching the damaged shard";
  } catch (const reel::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(victim), std::string::npos) << e.what();
  }
  EXPECT_EQ(loader.position().batch, served);  // the failed batch was not consumed
  expect_user_error([&] { loader.next(); }, victim);
}

// image_ratio sets how many image (1-frame) batches an epoch has per video batch: fewer than the
// data holds (a different subset each epoch), none, or more (cycling), deterministically.
TEST_F(LoaderTest, ImageRatioMixesImageAndVideoBatches) {
  // Batch 4: 7 image batches (29 images), 5 + 9 = 14 video batches.
  auto count = [&](double ratio, int epochs) {
    LoaderOptions o = options(4);
    o.image_ratio = ratio;
    Loader loader(data_, o);
    std::vector<std::pair<int, int>> per_epoch;  // (image batches, video batches)
    std::vector<std::set<int64_t>> videos;
    for (int e = 0; e < epochs; ++e) {
      int images = 0, video = 0;
      std::set<int64_t> seen;
      for (int n = 0; n < loader.batches_per_epoch(); ++n) {
        Batch b = loader.next();
        (b.bucket.frames == 1 ? images : video) += 1;
        if (b.bucket.frames > 1) seen.insert(b.indices.begin(), b.indices.end());
      }
      per_epoch.push_back({images, video});
      videos.push_back(seen);
      EXPECT_EQ(seen.size(), 14u * 4) << "every video batch once per epoch";
    }
    return per_epoch;
  };
  EXPECT_EQ(count(-1, 1), (std::vector<std::pair<int, int>>{{7, 14}}));
  EXPECT_EQ(count(0.5, 2), (std::vector<std::pair<int, int>>{{7, 14}, {7, 14}}));
  EXPECT_EQ(count(0.1, 1), (std::vector<std::pair<int, int>>{{1, 14}}));  // round(1.4)
  EXPECT_EQ(count(0, 1), (std::vector<std::pair<int, int>>{{0, 14}}));
  EXPECT_EQ(count(2, 1), (std::vector<std::pair<int, int>>{{28, 14}}));  // each image batch 4 times

  LoaderOptions o = options(4, 0);
  o.image_ratio = 0.25;
  Loader a(data_, o), b(data_, o);
  EXPECT_EQ(run(a, 30), run(b, 30));  // deterministic, across the epoch boundary
  Loader c(data_, o, {1, 3});
  Loader d(data_, o);
  for (int i = 0; i < a.batches_per_epoch() + 3; ++i) d.next();
  EXPECT_EQ(run(c, 5), run(d, 5));  // and resumable

  auto images_only = std::make_shared<const Dataset>(Dataset::open((root_ / "parts" / "1x8x8" / "train").string()));
  expect_user_error([&] { Loader l(images_only, o); }, "has no video bucket");
  auto videos_only = std::make_shared<const Dataset>(Dataset::open((root_ / "parts" / "4x8x8" / "train").string()));
  expect_user_error([&] { Loader l(videos_only, o); }, "has no 1-frame bucket");
  o.image_ratio = 0;
  EXPECT_NO_THROW(Loader(videos_only, o));
  if (!torch::cuda::is_available()) {
    o.pin_memory = true;
    expect_user_error([&] { Loader l(data_, o); }, "pin_memory needs a CUDA build");
  }
}

// A directory of latent shards (`reel data encode`) is a dataset too: buckets are the latents'
// T x H x W, batches hold the stored latents (B, C, T, H, W), and pixel-only reads are refused,
// as is a directory mixing pixels and latents.
TEST_F(LoaderTest, LatentShardsMakeALatentDataset) {
  const fs::path dir = root_ / "latents";
  fs::create_directories(dir);
  std::map<std::string, torch::Tensor> stored;  // caption -> latent as read back
  int next = 0;
  for (auto [shape, count] : {std::pair<std::array<int64_t, 4>, int>{{4, 2, 2, 2}, 6}, {{4, 1, 2, 3}, 5}}) {
    LatentShardWriter w((dir / ("l" + std::to_string(next) + ".h5")).string(),
                        {Bucket{8, 8, 8 + 4 * next}, shape, "src.h5", "tae.h5"});
    for (int i = 0; i < count; ++i) {
      torch::Tensor z = torch::randn({1, shape[0], shape[1], shape[2], shape[3]});
      const std::string caption = "c" + std::to_string(next) + "_" + std::to_string(i);
      w.add(z, {caption}, {8});
      stored[caption] = z[0].to(torch::kBFloat16).to(torch::kFloat32);
    }
    w.close();
    ++next;
  }
  auto data = std::make_shared<const Dataset>(Dataset::open(dir.string()));
  EXPECT_TRUE(data->latents());
  EXPECT_EQ(data->channels(), 4);
  EXPECT_EQ(data->buckets(), (std::vector<Bucket>{{1, 2, 3}, {2, 2, 2}}));
  EXPECT_EQ(data->size(), 11);
  Loader loader(data, options(2, 1));
  for (int n = 0; n < loader.batches_per_epoch(); ++n) {
    const Batch b = loader.next();
    ASSERT_EQ(b.pixels.sizes(), torch::IntArrayRef({2, 4, b.bucket.frames, b.bucket.height, b.bucket.width}));
    for (int i = 0; i < 2; ++i) EXPECT_TRUE(torch::equal(b.pixels[i], stored.at(b.captions[size_t(i)])));
    EXPECT_EQ(b.fps[0].item<int64_t>(), 8);
  }
  expect_user_error([&] { data->get(0); }, "holds latents");
  for (const auto& e : fs::directory_iterator(root_ / "train")) {  // one pixel shard among the latents
    fs::copy_file(e.path(), dir / "zz_pixels.h5");
    break;
  }
  expect_user_error([&] { Dataset::open(dir.string()); }, "mixes latent shards with");
}

// A budget of frames x height x width per global batch: 4x8x8 (256) clips come 3 to a batch of
// 768, 2x8x12 (192) 4, 1x8x8 images (64) 12; over 2 ranks each size rounds down to an even count
// and the ranks' halves make up the global batch.
TEST_F(LoaderTest, BudgetSizesEachBucketsBatches) {
  LoaderOptions o = options(1);
  o.budget = 768;
  Loader one(data_, o);
  EXPECT_EQ(one.global_batch_size({4, 8, 8}), 3);
  EXPECT_EQ(one.global_batch_size({2, 8, 12}), 4);
  EXPECT_EQ(one.global_batch_size({1, 8, 8}), 12);
  EXPECT_EQ(one.batches_per_epoch(), 37 / 3 + 21 / 4 + 29 / 12);
  std::map<std::string, std::set<size_t>> sizes;
  for (int n = 0; n < one.batches_per_epoch(); ++n) {
    const Batch b = one.next();
    sizes[b.bucket.name()].insert(b.indices.size());
  }
  EXPECT_EQ(sizes, (std::map<std::string, std::set<size_t>>{{"1x8x8", {12}}, {"2x8x12", {4}}, {"4x8x8", {3}}}));

  o.world_size = 2;
  std::vector<std::unique_ptr<Loader>> ranks;
  for (int r = 0; r < 2; ++r) {
    o.rank = r;
    ranks.push_back(std::make_unique<Loader>(data_, o));
  }
  EXPECT_EQ(ranks[0]->global_batch_size({4, 8, 8}), 2);
  EXPECT_EQ(ranks[0]->global_batch_size({1, 8, 8}), 12);
  for (int n = 0; n < 10; ++n) {
    const Batch a = ranks[0]->next(), b = ranks[1]->next();
    ASSERT_EQ(a.bucket, b.bucket);
    std::vector<int64_t> both = a.indices;
    both.insert(both.end(), b.indices.begin(), b.indices.end());
    EXPECT_EQ(both, ranks[0]->global_batch({0, n}));
  }
  o.budget = -1;
  expect_user_error([&] { Loader l(data_, o); }, "budget = -1");
}
