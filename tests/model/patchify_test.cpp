// patchify/unpatchify: exact inverses, t-major token order, shape errors that name the shape.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/patchify.h"
#include "model_test_util.h"

using namespace reel::model;
using reel::model::testing::contains;

TEST(Patchify, RoundTripIsExactForSeveralPatchesAndShapes) {
  struct Case { Grid3 patch; std::vector<int64_t> shape; };
  std::vector<Case> cases = {
      {{1, 2, 2}, {2, 3, 8, 16, 16}}, {{1, 2, 2}, {1, 3, 1, 16, 24}}, {{2, 2, 2}, {2, 4, 4, 6, 8}},
      {{1, 1, 1}, {1, 2, 3, 5, 7}},   {{2, 4, 1}, {3, 1, 6, 8, 5}},   {{1, 2, 2}, {2, 16, 8, 24, 16}},
  };
  for (const auto& c : cases) {
    auto x = torch::randn(c.shape);
    auto tokens = patchify(x, c.patch);
    int64_t n = (c.shape[2] / c.patch[0]) * (c.shape[3] / c.patch[1]) * (c.shape[4] / c.patch[2]);
    ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{c.shape[0], n, c.shape[1] * c.patch[0] * c.patch[1] * c.patch[2]}));
    auto back = unpatchify(tokens, c.patch, c.shape[1], c.shape[2], c.shape[3], c.shape[4]);
    EXPECT_TRUE(torch::equal(back, x)) << "patch " << c.patch[0] << c.patch[1] << c.patch[2];
  }
}

TEST(Patchify, TokensAreTMajorWithConvWeightFeatureOrder) {
  Grid3 patch = {1, 2, 2};
  int64_t C = 2, F = 2, H = 4, W = 6;
  auto x = torch::randn({1, C, F, H, W});
  auto tokens = patchify(x, patch);  // (1, 2*2*3, 2*1*2*2)
  int64_t hg = H / 2, wg = W / 2;
  for (int64_t t = 0; t < F; ++t)
    for (int64_t h = 0; h < hg; ++h)
      for (int64_t w = 0; w < wg; ++w) {
        int64_t n = (t * hg + h) * wg + w;
        // feature (c, dt, dh, dw) -> c*4 + dh*2 + dw (pt = 1)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t dh = 0; dh < 2; ++dh)
            for (int64_t dw = 0; dw < 2; ++dw) {
              float expect = x[0][c][t][h * 2 + dh][w * 2 + dw].item<float>();
              ASSERT_EQ(tokens[0][n][c * 4 + dh * 2 + dw].item<float>(), expect);
            }
      }
}

TEST(Patchify, IndivisibleShapeThrowsNamingTheShape) {
  try {
    patchify(torch::zeros({1, 3, 8, 15, 16}), {1, 2, 2});
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "[1, 3, 8, 15, 16]")) << e.what();
    EXPECT_TRUE(contains(e.what(), "height H = 15")) << e.what();
  }
  EXPECT_THROW(patchify(torch::zeros({1, 3, 3, 4, 4}), {2, 2, 2}), reel::UserError);
  EXPECT_THROW(unpatchify(torch::zeros({1, 5, 12}), {1, 2, 2}, 3, 1, 4, 4), reel::UserError);  // N != 4
}

TEST(PadFrames, RepeatsTheLastFrameUpToAMultipleOfPatchT) {
  torch::Tensor x = torch::randn({2, 3, 5, 4, 4});
  EXPECT_TRUE(pad_frames(x, 1).is_same(x));
  EXPECT_TRUE(pad_frames(x, 5).is_same(x));
  torch::Tensor p = pad_frames(x, 4);  // 5 -> 8 frames
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{2, 3, 8, 4, 4}));
  EXPECT_TRUE(torch::equal(p.narrow(2, 0, 5), x));
  for (int64_t f = 5; f < 8; ++f) EXPECT_TRUE(torch::equal(p.select(2, f), x.select(2, 4))) << f;
  // An image becomes a still clip of pt frames.
  torch::Tensor image = torch::randn({1, 3, 1, 4, 4});
  torch::Tensor clip = pad_frames(image, 2);
  ASSERT_EQ(clip.size(2), 2);
  EXPECT_TRUE(torch::equal(clip.select(2, 1), image.select(2, 0)));
  EXPECT_THROW(pad_frames(torch::zeros({3, 4, 4}), 2), reel::UserError);
}
