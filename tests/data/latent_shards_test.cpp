// Latent shards: bf16 storage round trip (values come back rounded to bf16, exactly), captions
// and fps, atomic appearance, and refusal of wrong shapes and foreign files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/fs.h"
#include "data/latent_shards.h"
#include "tests/test_util.h"

using namespace reel::data;
namespace fs = std::filesystem;
using reel::testing::expect_user_error;

TEST(LatentShards, RoundTripInBfloat16) {
  const fs::path dir = fs::temp_directory_path() / ("reel_latent_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "a.h5").string();
  const torch::Tensor z = torch::randn({5, 4, 2, 3, 3}) * 3;
  {
    LatentShardWriter w(path, {Bucket{8, 12, 12}, {4, 2, 3, 3}, "pixels.h5", "tae.h5"});
    w.add(z.narrow(0, 0, 2), {"a", "b"}, {8, 8});
    w.add(z.narrow(0, 2, 3), {"c", "d", "\xC3\xA9"}, {8, 16, 24});
    expect_user_error([&] { w.add(torch::zeros({1, 4, 2, 3, 4}), {"x"}, {8}); }, "expected latents (B, 4x2x3x3)");
    EXPECT_FALSE(fs::exists(path));  // not before close()
    w.close();
  }
  LatentShardReader r(path);
  EXPECT_EQ(r.size(), 5);
  EXPECT_EQ(r.info().bucket, (Bucket{8, 12, 12}));
  EXPECT_EQ(r.info().latent, (std::array<int64_t, 4>{4, 2, 3, 3}));
  EXPECT_EQ(r.info().source, "pixels.h5");
  for (int i = 0; i < 5; ++i) {
    const torch::Tensor back = r.read(i);
    EXPECT_TRUE(torch::equal(back, z[i].to(torch::kBFloat16).to(torch::kFloat32))) << i;
    EXPECT_LE((back - z[i]).abs().max().item<float>(), z[i].abs().max().item<float>() / 128);
  }
  EXPECT_EQ(r.caption(4), "\xC3\xA9");
  EXPECT_EQ(r.fps(3), 16);
  expect_user_error([&] { r.read(5); }, "out of range");
  reel::write_file_atomic((dir / "x.h5").string(), "not hdf5");
  expect_user_error([&] { LatentShardReader((dir / "x.h5").string()); }, "is not a readable HDF5 file");
  fs::remove_all(dir);
}
