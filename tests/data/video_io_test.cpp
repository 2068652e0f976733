// Video and image I/O: MP4 and PNG round trips, probing (cross-checked with the ffprobe CLI),
// atomic writes, errors that name the file, and contact-sheet geometry.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/error.h"
#include "data/video_io.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using reel::data::contact_sheet;
using reel::data::probe_video;
using reel::data::read_png;
using reel::data::read_video;
using reel::data::write_mp4;
using reel::data::write_png;
using reel::testing::user_error_message;

namespace {

// A fresh scratch directory per test, removed afterwards.
class VideoIo : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("reel_video_io_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  int files_in_dir() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) (void)e, ++n;
    return n;
  }
  fs::path dir_;
};

// A red 5x5 square moving right 1 px/frame over a dark grey vertical gradient: uint8 (F, H, W, 3).
torch::Tensor moving_square(int frames, int height, int width) {
  torch::Tensor clip = torch::empty({frames, height, width, 3}, torch::kUInt8);
  auto a = clip.accessor<uint8_t, 4>();
  for (int f = 0; f < frames; ++f) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const bool in = x >= 2 + f && x < 7 + f && y >= 4 && y < 9;
        const int grey = 40 + 4 * y;
        a[f][y][x][0] = in ? 210 : grey;
        a[f][y][x][1] = in ? 60 : grey;
        a[f][y][x][2] = in ? 50 : grey;
      }
    }
  }
  return clip;
}

double mean_abs_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().mean().item<double>();
}

// Nearest-neighbour upscaling, the reference for write_mp4's scale.
torch::Tensor upscaled(const torch::Tensor& clip, int scale) {
  return clip.repeat_interleave(scale, 1).repeat_interleave(scale, 2);
}

// Runs a shell command and returns its stdout; empty when it cannot run.
std::string run_command(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return out;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), pipe)) out += buf;
  ::pclose(pipe);
  return out;
}

bool have_cli(const std::string& tool) {
  return std::system(("command -v " + tool + " > /dev/null 2>&1").c_str()) == 0;
}


}  // namespace

TEST_F(VideoIo, Mp4RoundTripAtScale1) {
  const torch::Tensor clip = moving_square(8, 16, 16);
  write_mp4(path("a.mp4"), clip, 8);
  const torch::Tensor back = read_video(path("a.mp4"));
  ASSERT_EQ(back.sizes(), clip.sizes());
  EXPECT_EQ(back.scalar_type(), torch::kUInt8);
  const double err = mean_abs_error(back, clip);
  std::printf("[          ] mean abs error at scale 1: %.2f\n", err);
  EXPECT_LT(err, 12.0);
}

TEST_F(VideoIo, Mp4RoundTripAtScale4) {
  const torch::Tensor clip = moving_square(8, 16, 16);
  write_mp4(path("a.mp4"), clip, 8, /*scale=*/4);
  const torch::Tensor back = read_video(path("a.mp4"));
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{8, 64, 64, 3}));
  const double err = mean_abs_error(back, upscaled(clip, 4));
  std::printf("[          ] mean abs error at scale 4: %.2f\n", err);
  EXPECT_LT(err, 12.0);
}

TEST_F(VideoIo, ProbeReportsH264SizeFpsAndFrames) {
  write_mp4(path("a.mp4"), moving_square(8, 16, 16), 12, 2);
  const reel::data::VideoInfo info = probe_video(path("a.mp4"));
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.frames, 8);
  EXPECT_EQ(info.width, 32);
  EXPECT_EQ(info.height, 32);
  EXPECT_NEAR(info.fps, 12.0, 1e-6);
}

TEST_F(VideoIo, FfprobeCliAgreesOnFramesAndFormat) {
  if (!have_cli("ffprobe")) GTEST_SKIP() << "the ffprobe CLI is not installed";
  write_mp4(path("a.mp4"), moving_square(8, 16, 16), 8, 4);
  const std::string count = run_command(
      "ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames -of csv=p=0 '" +
      path("a.mp4") + "'");
  EXPECT_EQ(std::stoi(count), 8) << count;
  const std::string stream = run_command(
      "ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,pix_fmt,width,height,r_frame_rate "
      "-of default=nw=1 '" + path("a.mp4") + "'");
  EXPECT_NE(stream.find("codec_name=h264"), std::string::npos) << stream;
  EXPECT_NE(stream.find("pix_fmt=yuv420p"), std::string::npos) << stream;
  EXPECT_NE(stream.find("width=64"), std::string::npos) << stream;
  EXPECT_NE(stream.find("r_frame_rate=8/1"), std::string::npos) << stream;
}

// Files made by the ffmpeg CLI with other codecs, pixel formats and colour ranges (MJPEG is
// full-range BT.601, untagged H.264 limited-range BT.601, GIF palettized, WebM keeps no frame
// count) decode to the colour that went in.
TEST_F(VideoIo, ReadsVideosFromOtherEncoders) {
  if (!have_cli("ffmpeg")) GTEST_SKIP() << "the ffmpeg CLI is not installed";
  const std::string source = "-f lavfi -i color=c=0x3366CC:s=32x24:r=8:d=1";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"mjpeg.avi", "-c:v mjpeg -pix_fmt yuvj420p"},
      {"x264.mp4", "-c:v libx264 -pix_fmt yuv420p"},
      {"vp9.webm", "-c:v libvpx-vp9 -pix_fmt yuv420p"},
      {"anim.gif", "-c:v gif"},
  };
  for (const auto& [name, codec] : files) {
    const std::string file = path(name);
    if (std::system(("ffmpeg -v error -y " + source + " " + codec + " '" + file + "' > /dev/null 2>&1").c_str()) != 0) {
      std::printf("[          ] skipping %s: this ffmpeg cannot write it\n", name.c_str());
      continue;
    }
    const torch::Tensor clip = read_video(file);
    ASSERT_EQ(clip.sizes(), (std::vector<int64_t>{8, 24, 32, 3})) << name;
    const torch::Tensor mean = clip.to(torch::kFloat).mean({0, 1, 2});
    EXPECT_NEAR(mean[0].item<float>(), 0x33, 4) << name;
    EXPECT_NEAR(mean[1].item<float>(), 0x66, 4) << name;
    EXPECT_NEAR(mean[2].item<float>(), 0xCC, 4) << name;
    const reel::data::VideoInfo info = probe_video(file);
    EXPECT_EQ(info.frames, 8) << name;
    EXPECT_EQ(info.width, 32) << name;
    EXPECT_EQ(info.height, 24) << name;
  }
}

TEST_F(VideoIo, IndexIsAtTheFrontForStreaming) {
  write_mp4(path("a.mp4"), moving_square(8, 16, 16), 8);
  std::ifstream in(path("a.mp4"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t moov = bytes.find("moov"), mdat = bytes.find("mdat");
  ASSERT_NE(moov, std::string::npos);
  ASSERT_NE(mdat, std::string::npos);
  EXPECT_LT(moov, mdat) << "+faststart should put the moov atom before the media data";
}

TEST_F(VideoIo, SingleFrameClip) {
  const torch::Tensor clip = moving_square(1, 16, 16);
  write_mp4(path("one.mp4"), clip, 8);
  EXPECT_EQ(probe_video(path("one.mp4")).frames, 1);
  const torch::Tensor back = read_video(path("one.mp4"));
  ASSERT_EQ(back.sizes(), clip.sizes());
  EXPECT_LT(mean_abs_error(back, clip), 12.0);
}

TEST_F(VideoIo, OddSizeIsPaddedToEven) {
  const torch::Tensor clip = moving_square(4, 15, 13);  // H 15, W 13
  write_mp4(path("odd.mp4"), clip, 8);
  const torch::Tensor back = read_video(path("odd.mp4"));
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{4, 16, 14, 3}));
  EXPECT_LT(mean_abs_error(back.narrow(1, 0, 15).narrow(2, 0, 13), clip), 12.0);

  write_mp4(path("odd3.mp4"), moving_square(2, 5, 5), 8, 3);  // 15x15 after scaling
  EXPECT_EQ(read_video(path("odd3.mp4")).sizes(), (std::vector<int64_t>{2, 16, 16, 3}));
}

TEST_F(VideoIo, WriteLeavesOnlyTheFinalFile) {
  write_mp4(path("a.mp4"), moving_square(8, 16, 16), 8);
  write_png(path("a.png"), moving_square(1, 16, 16)[0]);
  EXPECT_EQ(files_in_dir(), 2);
  EXPECT_TRUE(fs::exists(path("a.mp4")));
  EXPECT_TRUE(fs::exists(path("a.png")));
}

TEST_F(VideoIo, UnwritableDirectoryThrowsNamingThePath) {
  std::ofstream(path("file")) << "a file, not a directory";
  const std::string target = path("file/sub/clip.mp4");
  const std::string msg = user_error_message([&] { write_mp4(target, moving_square(2, 16, 16), 8); });
  EXPECT_NE(msg.find(target), std::string::npos) << msg;
  const std::string png = path("file/img.png");
  const std::string msg2 = user_error_message([&] { write_png(png, moving_square(1, 16, 16)[0]); });
  EXPECT_NE(msg2.find(png), std::string::npos) << msg2;
  EXPECT_EQ(files_in_dir(), 1);  // only "file": no temporaries left behind
}

TEST_F(VideoIo, CorruptFileThrowsNamingIt) {
  std::mt19937 rng(7);
  std::string junk(4096, '\0');
  for (char& c : junk) c = static_cast<char>(rng() & 0xff);
  std::ofstream(path("junk.mp4"), std::ios::binary) << junk;
  const std::string junk_path = path("junk.mp4");
  const std::string msg = user_error_message([&] { read_video(junk_path); });
  EXPECT_NE(msg.find(junk_path), std::string::npos) << msg;
  const std::string msg2 = user_error_message([&] { probe_video(junk_path); });
  EXPECT_NE(msg2.find(junk_path), std::string::npos) << msg2;
  const std::string msg3 = user_error_message([&] { read_png(junk_path); });
  EXPECT_NE(msg3.find(junk_path), std::string::npos) << msg3;
}

TEST_F(VideoIo, TruncatedMp4ThrowsNamingIt) {
  torch::manual_seed(1);
  const torch::Tensor clip = torch::randint(0, 256, {16, 32, 32, 3}, torch::kUInt8);  // incompressible
  // At 80% the index (at the front) survives and the media data does not; at 30% neither does.
  for (double kept : {0.8, 0.3}) {
    write_mp4(path("a.mp4"), clip, 8);
    fs::resize_file(path("a.mp4"), static_cast<uintmax_t>(fs::file_size(path("a.mp4")) * kept));
    const std::string msg = user_error_message([&] { read_video(path("a.mp4")); });
    EXPECT_NE(msg.find(path("a.mp4")), std::string::npos) << msg;
  }
}

TEST_F(VideoIo, MissingFileThrowsNamingIt) {
  const std::string missing = path("missing.mp4");
  const std::string msg = user_error_message([&] { read_video(missing); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_NE(user_error_message([&] { read_png(path("missing.png")); }).find("missing.png"), std::string::npos);
}

TEST_F(VideoIo, BadTensorsAndArgumentsThrow) {
  EXPECT_THROW(write_mp4(path("a.mp4"), torch::zeros({8, 16, 16, 3}), 8), reel::UserError);  // float
  EXPECT_THROW(write_mp4(path("a.mp4"), torch::zeros({8, 3, 16, 16}, torch::kUInt8), 8), reel::UserError);
  EXPECT_THROW(write_mp4(path("a.mp4"), torch::zeros({0, 16, 16, 3}, torch::kUInt8), 8), reel::UserError);
  EXPECT_THROW(write_mp4(path("a.mp4"), moving_square(2, 16, 16), 0), reel::UserError);
  EXPECT_THROW(write_mp4(path("a.mp4"), moving_square(2, 16, 16), 8, 0), reel::UserError);
  EXPECT_THROW(write_png(path("a.png"), moving_square(2, 16, 16)), reel::UserError);  // 4-D
  EXPECT_EQ(files_in_dir(), 0);
}

TEST_F(VideoIo, PngRoundTripIsExact) {
  torch::manual_seed(3);
  for (auto size : {std::pair<int, int>{16, 16}, {7, 13}, {1, 1}}) {
    const torch::Tensor image = torch::randint(0, 256, {size.first, size.second, 3}, torch::kUInt8);
    write_png(path("a.png"), image);
    const torch::Tensor back = read_png(path("a.png"));
    ASSERT_EQ(back.sizes(), image.sizes());
    EXPECT_TRUE(torch::equal(back, image));
    EXPECT_TRUE(torch::equal(read_video(path("a.png"))[0], image));  // the generic reader agrees
    EXPECT_EQ(probe_video(path("a.png")).codec, "png");
  }
  EXPECT_EQ(files_in_dir(), 1);
}

TEST(ContactSheet, GeometryPaddingAndFramePicks) {
  // Clip A: 16 frames of 4x5 whose every pixel holds its frame index; clip B: 3 frames of 6x2.
  torch::Tensor a = torch::arange(16, torch::kUInt8).view({16, 1, 1, 1}).expand({16, 4, 5, 3}).contiguous();
  torch::Tensor b = torch::full({3, 6, 2, 3}, 100, torch::kUInt8);
  const int scale = 2, pad = 3;
  const torch::Tensor sheet = contact_sheet({a, b}, /*max_frames=*/4, scale, pad);
  // Height: 4*2 + 3 + 6*2 = 23. Width: max(4*(5*2) + 3*3, 3*(2*2) + 2*3) = 49.
  ASSERT_EQ(sheet.sizes(), (std::vector<int64_t>{23, 49, 3}));
  EXPECT_EQ(sheet.scalar_type(), torch::kUInt8);
  // Row A shows frames 0, 5, 10, 15 (evenly spaced, first and last) in 10x8 cells 13 px apart.
  const int picks[] = {0, 5, 10, 15};
  for (int k = 0; k < 4; ++k) {
    const torch::Tensor cell = sheet.narrow(0, 0, 8).narrow(1, k * 13, 10);
    EXPECT_TRUE(torch::all(cell == picks[k]).item<bool>()) << "cell " << k;
  }
  EXPECT_TRUE(torch::all(sheet.narrow(0, 0, 8).narrow(1, 10, 3) == 255).item<bool>());  // pad between cells
  EXPECT_TRUE(torch::all(sheet.narrow(0, 8, 3) == 255).item<bool>());                   // pad between rows
  // Row B: three 4x12 cells at x = 0, 7, 14, then white to the right edge.
  for (int k = 0; k < 3; ++k) {
    EXPECT_TRUE(torch::all(sheet.narrow(0, 11, 12).narrow(1, k * 7, 4) == 100).item<bool>()) << "cell " << k;
  }
  EXPECT_TRUE(torch::all(sheet.narrow(0, 11, 12).narrow(1, 18, 31) == 255).item<bool>());
}

TEST(ContactSheet, SingleImagesAndBadArguments) {
  const torch::Tensor image = torch::zeros({3, 4, 3}, torch::kUInt8);
  EXPECT_EQ(contact_sheet({image}, 8, 1, 2).sizes(), (std::vector<int64_t>{3, 4, 3}));
  EXPECT_THROW(contact_sheet({}), reel::UserError);
  EXPECT_THROW(contact_sheet({image}, 0), reel::UserError);
  EXPECT_THROW(contact_sheet({torch::zeros({3, 4, 3})}), reel::UserError);  // float
}
