// The HDF5 shard format: exact round trip, atomic appearance, and refusal of files that are
// not shards, are truncated, or have corrupted pixels.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "tests/test_util.h"
#include "data/shards.h"
#include "data/synth.h"

using namespace reel::data;
namespace fs = std::filesystem;
using reel::testing::expect_user_error;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("reel_shards_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<Clip> some_clips(const Bucket& b, int n) {
  std::vector<Clip> clips;
  for (int i = 0; i < n; ++i) clips.push_back(render_clip(b, i % 7, i % 3, i % 5, 100 + i, 8 + i % 3, 0.5));
  return clips;
}

void write_shard(const std::string& path, const Bucket& b, const std::vector<Clip>& clips) {
  ShardWriter writer(path, b);
  for (const Clip& c : clips) writer.add(c);
  writer.close();
}


// File offset of the stored chunk (the pixels of one sample) `sample` in a shard.
haddr_t chunk_address(const std::string& path, int64_t sample) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dset = H5Dopen2(file, "pixels", H5P_DEFAULT);
  hid_t space = H5Dget_space(dset);
  hsize_t offset[5] = {hsize_t(sample), 0, 0, 0, 0}, size = 0;
  unsigned mask = 0;
  haddr_t addr = HADDR_UNDEF;
  H5Dget_chunk_info_by_coord(dset, offset, &mask, &addr, &size);
  H5Sclose(space);
  H5Dclose(dset);
  H5Fclose(file);
  return addr;
}

void overwrite(const std::string& path, std::streamoff offset, size_t count, char byte) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  std::string junk(count, byte);
  f.write(junk.data(), std::streamsize(junk.size()));
}

}  // namespace

TEST(Shards, RoundTripIsExact) {
  fs::path dir = temp_dir("roundtrip");
  const Bucket b{8, 16, 24};
  std::vector<Clip> clips = some_clips(b, 12);
  const std::string path = (dir / "8x16x24_00000.h5").string();
  write_shard(path, b, clips);

  ShardReader reader(path);
  EXPECT_EQ(reader.path(), path);
  EXPECT_EQ(reader.bucket(), b);
  ASSERT_EQ(reader.size(), 12);
  for (int64_t i = 0; i < 12; ++i) {
    const Clip& want = clips[i];
    Clip got = reader.read(i);
    EXPECT_TRUE(torch::equal(got.pixels, want.pixels)) << i;
    EXPECT_TRUE(torch::equal(reader.read_pixels(i), want.pixels)) << i;
    EXPECT_EQ(got.caption, want.caption);
    EXPECT_EQ(reader.caption(i), want.caption);
    EXPECT_EQ(got.fps, want.fps);
    EXPECT_EQ(reader.fps(i), want.fps);
    const Truth& t = reader.truth(i);
    EXPECT_EQ(t.color, want.truth.color);
    EXPECT_EQ(t.shape, want.truth.shape);
    EXPECT_EQ(t.motion, want.truth.motion);
    EXPECT_EQ(t.background, want.truth.background);
    EXPECT_EQ(t.textured, want.truth.textured);
    EXPECT_EQ(t.size, want.truth.size);
    EXPECT_EQ(t.centers, want.truth.centers);
  }
  expect_user_error([&] { reader.read(12); }, path);
  expect_user_error([&] { reader.caption(-1); }, "out of range");
  fs::remove_all(dir);
}

TEST(Shards, UnicodeCaptionsAndEmptyShards) {
  fs::path dir = temp_dir("unicode");
  const Bucket b{1, 8, 8};
  std::vector<Clip> clips = some_clips(b, 2);
  clips[1].caption = "un cercle rouge \xC3\xA0 gauche \xE2\x86\x90";
  write_shard((dir / "a.h5").string(), b, clips);
  EXPECT_EQ(ShardReader((dir / "a.h5").string()).caption(1), clips[1].caption);
  write_shard((dir / "empty.h5").string(), b, {});
  EXPECT_EQ(ShardReader((dir / "empty.h5").string()).size(), 0);
  fs::remove_all(dir);
}

TEST(Shards, AppearOnlyWhenClosed) {
  fs::path dir = temp_dir("atomic");
  const Bucket b{2, 8, 8};
  const std::string path = (dir / "s.h5").string();
  {
    ShardWriter writer(path, b);
    for (const Clip& c : some_clips(b, 3)) writer.add(c);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_EQ(writer.size(), 3);
  }  // destroyed without close(): nothing at all is left
  EXPECT_TRUE(fs::is_empty(dir));
  write_shard(path, b, some_clips(b, 3));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename(), "s.h5");
    ++files;
  }
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(Shards, WriterRefusesClipsOfAnotherShape) {
  fs::path dir = temp_dir("wrongshape");
  const std::string path = (dir / "s.h5").string();
  ShardWriter writer(path, {4, 8, 8});
  expect_user_error([&] { writer.add(render_clip({4, 8, 12}, 0, 0, 0, 1)); }, "4x8x8");
  Clip clip = render_clip({4, 8, 8}, 0, 0, 0, 1);
  clip.pixels = clip.pixels.to(torch::kFloat32);
  expect_user_error([&] { writer.add(clip); }, "uint8");
  clip = render_clip({4, 8, 8}, 0, 0, 0, 1);
  clip.truth.centers.pop_back();
  expect_user_error([&] { writer.add(clip); }, "centers");
  clip = render_clip({4, 8, 8}, 0, 0, 0, 1);
  clip.truth.color = 12;
  expect_user_error([&] { writer.add(clip); }, "color 12");
  fs::remove_all(dir);
}

TEST(Shards, TruncatedAndForeignFilesAreRefusedNamingThePath) {
  fs::path dir = temp_dir("refuse");
  const Bucket b{4, 16, 16};
  const std::string good = (dir / "good.h5").string();
  write_shard(good, b, some_clips(b, 8));

  const std::string cut = (dir / "cut.h5").string();
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(good) / 2);
  expect_user_error([&] { ShardReader r(cut); }, cut);

  const std::string text = (dir / "notes.h5").string();
  reel::write_file_atomic(text, "this is not an HDF5 file\n");
  expect_user_error([&] { ShardReader r(text); }, text);

  expect_user_error([&] { ShardReader r((dir / "missing.h5").string()); }, "missing.h5");

  // An HDF5 file that is not a reel shard, and one that lost a dataset.
  const std::string other = (dir / "other.h5").string();
  {
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    H5Fclose(H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  }
  expect_user_error([&] { ShardReader r(other); }, "'format' is missing");
  const std::string partial = (dir / "partial.h5").string();
  fs::copy_file(good, partial);
  {
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    hid_t file = H5Fopen(partial.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "truth/centers", H5P_DEFAULT);
    H5Fclose(file);
  }
  expect_user_error([&] { ShardReader r(partial); }, "'truth/centers' is missing");
  ShardReader still_good(good);  // the original is untouched and fine
  EXPECT_EQ(still_good.size(), 8);
  fs::remove_all(dir);
}

// Pixels are checksummed: a damaged sample is refused (naming the shard), its neighbours still read.
TEST(Shards, CorruptedPixelsAreRefusedOnRead) {
  fs::path dir = temp_dir("corrupt");
  const Bucket b{4, 16, 16};
  const std::string path = (dir / "s.h5").string();
  std::vector<Clip> clips = some_clips(b, 6);
  write_shard(path, b, clips);
  const haddr_t addr = chunk_address(path, 3);
  ASSERT_NE(addr, HADDR_UNDEF);
  overwrite(path, std::streamoff(addr + 100), 16, '\x5a');

  ShardReader reader(path);  // captions and truth are intact
  expect_user_error([&] { reader.read_pixels(3); }, path);
  EXPECT_TRUE(torch::equal(reader.read_pixels(2), clips[2].pixels));
  EXPECT_TRUE(torch::equal(reader.read_pixels(4), clips[4].pixels));
  fs::remove_all(dir);
}

TEST(Shards, ConcurrentReadsAreSafeAndExact) {
  fs::path dir = temp_dir("threads");
  const Bucket b{4, 8, 8};
  std::vector<Clip> clips = some_clips(b, 16);
  write_shard((dir / "a.h5").string(), b, clips);
  ShardReader reader((dir / "a.h5").string());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        const int64_t i = (t * 7 + round) % 16;
        if (!torch::equal(reader.read_pixels(i), clips[i].pixels)) ++mismatches;
      }
    });
  // A writer on this thread meanwhile.
  write_shard((dir / "b.h5").string(), b, clips);
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_TRUE(torch::equal(ShardReader((dir / "b.h5").string()).read_pixels(15), clips[15].pixels));
  fs::remove_all(dir);
}

// The optional parts of ingested shards: no truth (and truth() says so), per-sample source
// metadata and audio (clips without audio read back as undefined), all exact.
TEST(Shards, IngestedLayoutRoundTrip) {
  const fs::path dir = temp_dir("ingested");
  const Bucket b{4, 8, 12};
  ShardLayout layout;
  layout.truth = false;
  layout.source = true;
  layout.audio_rate = 1000;
  layout.audio_samples = 500;
  ShardWriter w((dir / "s.h5").string(), b, layout);
  std::vector<Clip> clips = some_clips(b, 3);
  for (int i = 0; i < 3; ++i) {
    clips[i].truth = Truth{};
    clips[i].source = {"video" + std::to_string(i) + ".mkv", 1.5 * i, 29.97, 640 + i, 480};
    if (i != 1) clips[i].audio = torch::randint(-30000, 30000, {500}, torch::kInt16);
    w.add(clips[i]);
  }
  Clip bad = clips[0];
  bad.audio = torch::zeros({499}, torch::kInt16);
  expect_user_error([&] { w.add(bad); }, "audio must be int16 of shape [500]");
  w.close();
  ShardReader r((dir / "s.h5").string());
  EXPECT_FALSE(r.layout().truth);
  EXPECT_TRUE(r.layout().source);
  EXPECT_EQ(r.layout().audio_rate, 1000);
  for (int i = 0; i < 3; ++i) {
    const Clip c = r.read(i);
    EXPECT_TRUE(torch::equal(c.pixels, clips[i].pixels));
    EXPECT_EQ(c.source.path, clips[i].source.path);
    EXPECT_EQ(c.source.start, clips[i].source.start);
    EXPECT_EQ(c.source.fps, 29.97);
    EXPECT_EQ(c.source.width, 640 + i);
    EXPECT_EQ(c.source.height, 480);
    EXPECT_EQ(c.audio.defined(), i != 1);
    if (i != 1) EXPECT_TRUE(torch::equal(c.audio, clips[i].audio));
  }
  expect_user_error([&] { r.truth(0); }, "holds no truth");
  ShardWriter plain((dir / "p.h5").string(), b);
  plain.add(some_clips(b, 1)[0]);
  plain.close();
  expect_user_error([&] { ShardReader((dir / "p.h5").string()).source(0); }, "no per-sample source metadata");
  fs::remove_all(dir);
}
