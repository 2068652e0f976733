// `reel data ingest` on real files: bucket choice by aspect ratio and duration, frame-rate
// resampling (which source frame each output frame shows), cover-resize + centre crop, audio cut
// with its clip and audio-only files, caption sidecars, the shard metadata, refusal of bad input,
// and resumption after an interrupted commit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/fs.h"
#include "data/audio_shards.h"
#include "data/ingest.h"
#include "data/loader.h"
#include "data/media.h"
#include "data/shards.h"
#include "data/video_io.h"
#include "tests/test_util.h"

using namespace reel::data;
namespace fs = std::filesystem;
using reel::testing::expect_user_error;

namespace {

class Ingest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("reel_ingest_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "src");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string src(const std::string& name) const { return (dir_ / "src" / name).string(); }
  std::string out() const { return (dir_ / "out").string(); }
  IngestOptions options() const {
    IngestOptions o;
    o.sources = {(dir_ / "src").string()};
    o.out_dir = out();
    o.threads = 1;
    return o;
  }
  fs::path dir_;
};

bool have_ffmpeg() { return std::system("command -v ffmpeg > /dev/null 2>&1") == 0; }
void ffmpeg(const std::string& args) {
  ASSERT_EQ(std::system(("ffmpeg -v error -y -nostdin " + args + " > /dev/null 2>&1").c_str()), 0) << args;
}

// Every sample of every shard under dir (train/), keyed "source@start".
std::map<std::string, Clip> samples(const std::string& dir) {
  std::map<std::string, Clip> out;
  Dataset d = Dataset::open(dir);
  for (int64_t i = 0; i < d.size(); ++i) {
    Clip c = d.get(i);
    const std::string key = fs::path(c.source.path).filename().string() + "@" + std::to_string(c.source.start);
    EXPECT_TRUE(out.emplace(key, c).second) << "sample " << key << " twice";
  }
  return out;
}

// A clip whose frame i is a flat grey of level 4 * i.
torch::Tensor numbered_frames(int frames, int h, int w) {
  torch::Tensor clip = torch::empty({frames, h, w, 3}, torch::kUInt8);
  for (int i = 0; i < frames; ++i) clip[i].fill_(4 * i);
  return clip;
}

}  // namespace

TEST(BucketGrid, NearestAspectRatio) {
  BucketGrid g;  // 16x16, 16x24, 24x16 (height x width)
  EXPECT_EQ(g.nearest_size(100, 100), std::make_pair(16, 16));
  EXPECT_EQ(g.nearest_size(320, 240), std::make_pair(16, 24));  // 4:3 is nearer 3:2 than 1:1
  EXPECT_EQ(g.nearest_size(1920, 1080), std::make_pair(16, 24));
  EXPECT_EQ(g.nearest_size(240, 320), std::make_pair(24, 16));
  EXPECT_EQ(g.nearest_size(110, 100), std::make_pair(16, 16));
  EXPECT_EQ(g.nearest_size(500, 100), std::make_pair(16, 24));
}

TEST(BucketGrid, CutsLongestFirstFromTheStart) {
  BucketGrid g;
  g.fps = 8;
  g.frames = {8, 16};  // 1 s and 2 s
  auto lengths = [&](double s) {
    std::vector<int> f;
    double expect_start = 0;
    for (const BucketGrid::Cut& c : g.cuts(s)) {
      EXPECT_DOUBLE_EQ(c.start, expect_start);
      expect_start += double(c.frames) / g.fps;
      f.push_back(c.frames);
    }
    return f;
  };
  EXPECT_EQ(lengths(0.9), std::vector<int>{});
  EXPECT_EQ(lengths(1.0), std::vector<int>({8}));
  EXPECT_EQ(lengths(2.5), std::vector<int>({16}));
  EXPECT_EQ(lengths(3.5), std::vector<int>({16, 8}));
  EXPECT_EQ(lengths(5.0), std::vector<int>({16, 16, 8}));
  g.frames = {1};
  expect_user_error([&] { g.check(); }, "must be >= 2");
}

// 24 fps in, 8 fps out: output frame j of clip c shows source frame 3 * (8c + j).
TEST_F(Ingest, ResamplesTheFrameRateAndCutsClips) {
  write_mp4(src("count.mp4"), numbered_frames(48, 32, 32), 24);
  IngestOptions o = options();
  o.grid.frames = {8};
  const IngestReport r = ingest_media(o);
  EXPECT_EQ(r.files, 1);
  EXPECT_EQ(r.videos, 1);
  EXPECT_EQ(r.clips, (std::map<std::string, int64_t>{{"8x16x16", 2}}));
  const auto all = samples(out() + "/train");
  ASSERT_EQ(all.size(), 2u);
  int c = 0;
  for (const auto& [key, clip] : all) {
    EXPECT_EQ(clip.source.start, double(c));
    EXPECT_EQ(clip.source.fps, 24.0);
    EXPECT_EQ(clip.source.width, 32);
    EXPECT_EQ(clip.fps, 8);
    EXPECT_FALSE(clip.audio.defined());  // the file has no audio track
    for (int j = 0; j < 8; ++j) {
      const double level = clip.pixels[j].to(torch::kFloat).mean().item<double>();
      EXPECT_NEAR(level, 4.0 * 3 * (8 * c + j), 3.0) << "clip " << c << " frame " << j;
    }
    ++c;
  }
}

// 6 fps in, 8 fps out: each source frame is held until the next one is due.
TEST_F(Ingest, HoldsFramesWhenTheSourceIsSlower) {
  write_mp4(src("slow.mp4"), numbered_frames(12, 16, 16), 6);
  IngestOptions o = options();
  ingest_media(o);
  const auto all = samples(out() + "/train");
  ASSERT_EQ(all.size(), 2u);
  const Clip& first = all.begin()->second;
  for (int j = 0; j < 8; ++j) {  // output time j/8 s shows source frame floor(j * 6 / 8)
    const double level = first.pixels[j].to(torch::kFloat).mean().item<double>();
    EXPECT_NEAR(level, 4.0 * std::floor(j * 6.0 / 8.0 + 1e-9), 3.0) << "frame " << j;
  }
}

// A 64x32 picture, left half red and right half blue, covers 16x24 at 32x16 and loses 4 columns
// on each side: 12 red columns, then 12 blue ones.
TEST_F(Ingest, CoversTheBucketAndCropsTheCentre) {
  torch::Tensor img = torch::zeros({32, 64, 3}, torch::kUInt8);
  img.narrow(1, 0, 32).select(2, 0).fill_(255);
  img.narrow(1, 32, 32).select(2, 2).fill_(255);
  write_png(src("halves.png"), img);
  const IngestReport r = ingest_media(options());
  EXPECT_EQ(r.images, 1);
  EXPECT_EQ(r.clips, (std::map<std::string, int64_t>{{"1x16x24", 1}}));
  const Clip clip = samples(out() + "/train").begin()->second;
  ASSERT_EQ(clip.pixels.sizes(), torch::IntArrayRef({1, 16, 24, 3}));
  const torch::Tensor f = clip.pixels[0].to(torch::kFloat);
  EXPECT_GT(f.narrow(1, 0, 11).select(2, 0).min().item<float>(), 230);  // red
  EXPECT_LT(f.narrow(1, 0, 11).select(2, 2).max().item<float>(), 25);
  EXPECT_GT(f.narrow(1, 13, 11).select(2, 2).min().item<float>(), 230);  // blue
  EXPECT_LT(f.narrow(1, 13, 11).select(2, 0).max().item<float>(), 25);
}

TEST_F(Ingest, AudioTracksAndAudioOnlyFiles) {
  if (!have_ffmpeg()) GTEST_SKIP() << "the ffmpeg CLI is not installed";
  ffmpeg("-f lavfi -i testsrc2=size=64x64:rate=8:duration=1 -f lavfi -i sine=frequency=500:sample_rate=44100:duration=1"
         " -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest '" + src("talk.mp4") + "'");
  ffmpeg("-f lavfi -i sine=frequency=250:sample_rate=22050:duration=2.5 -ac 2 '" + src("tone.wav") + "'");
  IngestOptions o = options();
  o.audio_rate = 16000;
  const IngestReport r = ingest_media(o);
  EXPECT_EQ(r.videos, 1);
  EXPECT_EQ(r.audio_files, 1);
  EXPECT_EQ(r.audio_clips, (std::map<std::string, int64_t>{{"16000", 2}}));  // 2.5 s: two 1 s clips
  const Clip clip = samples(out() + "/train").begin()->second;
  ASSERT_TRUE(clip.audio.defined());
  ASSERT_EQ(clip.audio.size(0), 16000);
  // A 500 Hz tone crosses zero about 1000 times a second (AAC's priming delay shifts it a little).
  auto crossings = [](const torch::Tensor& a) {
    const torch::Tensor up = a >= 0;
    return (up.narrow(0, 1, up.size(0) - 1) != up.narrow(0, 0, up.size(0) - 1)).sum().item<int64_t>();
  };
  EXPECT_NEAR(double(crossings(clip.audio)), 1000, 60);
  const fs::path audio_dir = fs::path(out()) / "train" / "audio";
  ASSERT_TRUE(fs::is_directory(audio_dir));
  int64_t audio_clips = 0;
  for (const auto& e : fs::directory_iterator(audio_dir)) {
    const AudioShard shard = read_audio_shard(e.path().string());
    EXPECT_EQ(shard.rate, 16000);
    for (const AudioClip& a : shard.clips) {
      EXPECT_EQ(fs::path(a.source).filename(), "tone.wav");
      EXPECT_NEAR(double(crossings(a.audio)), 500, 10);
      ++audio_clips;
    }
  }
  EXPECT_EQ(audio_clips, 2);
}

TEST_F(Ingest, CaptionsFromJsonlAndCsvSidecars) {
  for (const char* name : {"a.png", "b.png", "c.png"}) write_png(src(name), torch::full({16, 16, 3}, 90, torch::kUInt8));
  {
    std::ofstream f(src("captions.csv"));
    f << "path,caption\n" << "a.png,\"a grey square, \"\"flat\"\"\"\n" << "b.png,plain text\n";
  }
  IngestReport r = ingest_media(options());
  EXPECT_EQ(r.uncaptioned, 1);  // c.png
  std::map<std::string, std::string> captions;
  for (const auto& [key, clip] : samples(out() + "/train")) captions[fs::path(clip.source.path).filename().string()] = clip.caption;
  EXPECT_EQ(captions["a.png"], "a grey square, \"flat\"");
  EXPECT_EQ(captions["b.png"], "plain text");
  EXPECT_EQ(captions["c.png"], "");

  const std::string side = (dir_ / "side.jsonl").string();
  reel::write_file_atomic(side, "{\"path\": \"src/c.png\", \"caption\": \"from jsonl\"}\n");
  fs::remove_all(out());
  IngestOptions o = options();
  o.captions = side;  // an explicit sidecar replaces the directory's own
  r = ingest_media(o);
  EXPECT_EQ(r.uncaptioned, 2);
  for (const auto& [key, clip] : samples(out() + "/train"))
    if (fs::path(clip.source.path).filename() == "c.png") EXPECT_EQ(clip.caption, "from jsonl");

  reel::write_file_atomic(side, "{\"path\": \"c.png\"}\n");
  expect_user_error([&] { ingest_media(o); }, "side.jsonl:1: expected {\"path\"");
}

TEST_F(Ingest, SkipsWhatItCannotReadAndRefusesBadInput) {
  write_png(src("ok.png"), torch::full({16, 16, 3}, 90, torch::kUInt8));
  reel::write_file_atomic(src("notes.txt"), "not a media file");
  write_mp4(src("short.mp4"), numbered_frames(4, 16, 16), 8);  // 0.5 s: shorter than any bucket
  const IngestReport r = ingest_media(options());
  EXPECT_EQ(r.ingested, 1);
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_NE(r.skipped[0].second.find("notes.txt"), std::string::npos) << r.skipped[0].second;
  EXPECT_NE(r.skipped[1].second.find("shorter than the shortest bucket"), std::string::npos) << r.skipped[1].second;

  IngestOptions o = options();
  o.sources = {src("missing")};
  expect_user_error([&] { ingest_media(o); }, "source '" + src("missing") + "' does not exist");
  o = options();
  o.grid.sizes.clear();
  expect_user_error([&] { ingest_media(o); }, "has no sizes");
  o = options();
  o.out_dir = (dir_ / "foreign").string();
  reel::make_dirs(o.out_dir + "/train");
  reel::write_file_atomic(o.out_dir + "/train/x.h5", "x");
  expect_user_error([&] { ingest_media(o); }, "holds no ingest journal");
}

// A crash after a commit's shards were renamed into place but before its journal line: the rerun
// removes those shards, redoes their files, and ends with every sample exactly once. A torn last
// journal line is dropped the same way.
TEST_F(Ingest, ResumesAfterAnInterruptedCommit) {
  for (int i = 0; i < 6; ++i)
    write_mp4(src("v" + std::to_string(i) + ".mp4"), numbered_frames(8 + 8 * (i % 2), 16, 16 + 8 * (i % 2)), 8);
  IngestOptions o = options();
  o.samples_per_shard = 1;  // a commit per file
  ingest_media(o);
  const auto whole = samples(out() + "/train");
  ASSERT_EQ(whole.size(), 9u);  // three 2 s files give two clips each

  const std::string journal = out() + "/ingest_journal.jsonl";
  std::vector<std::string> lines;
  {
    std::ifstream in(journal);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 6u);
  // Forget the last two commits (their shards stay on disk) and tear the line before them.
  std::string kept;
  for (size_t i = 0; i + 3 < lines.size(); ++i) kept += lines[i] + "\n";
  kept += lines[lines.size() - 3].substr(0, 10);
  reel::write_file_atomic(journal, kept);
  const IngestReport r = ingest_media(o);
  EXPECT_EQ(r.resumed_files, 3);
  const auto again = samples(out() + "/train");
  ASSERT_EQ(again.size(), whole.size());
  for (const auto& [key, clip] : whole) {
    ASSERT_TRUE(again.count(key)) << key;
    EXPECT_TRUE(torch::equal(again.at(key).pixels, clip.pixels)) << key;
  }
  EXPECT_EQ(r.ingested, 6);
}
