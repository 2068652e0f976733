// Factorized t/h/w position embeddings: the right table rows reach every token of every bucket.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "model/init.h"
#include "model/patchify.h"
#include "model/position_embedding.h"
#include "model_test_util.h"

using namespace reel::model;
using reel::model::testing::contains;

TEST(PositionEmbedding, EveryTokenOfEveryBucketGetsItsOwnTableRows) {
  const int64_t d = 3;
  FactorizedPositionEmbedding pos(Grid3{8, 12, 12}, d);
  {
    torch::NoGradGuard no_grad;
    // t rows hold t, h rows 100*h, w rows 10000*w + channel: every (t, h, w, c) sums to a unique value.
    for (int64_t i = 0; i < 8; ++i) pos->t[i].fill_(static_cast<double>(i));
    for (int64_t i = 0; i < 12; ++i) pos->h[i].fill_(100.0 * i);
    for (int64_t i = 0; i < 12; ++i) pos->w[i].copy_(torch::arange(d).to(torch::kFloat) + 10000.0 * i);
  }
  // Pixel buckets F x H x W with the tiny model's 1x2x2 patch.
  std::vector<std::vector<int64_t>> buckets = {{8, 16, 16}, {8, 16, 24}, {1, 16, 16}};
  for (const auto& bucket : buckets) {
    Grid3 grid = patch_grid({1, 3, bucket[0], bucket[1], bucket[2]}, {1, 2, 2});
    auto table = pos(grid);
    ASSERT_EQ(table.sizes(), (std::vector<int64_t>{grid[0] * grid[1] * grid[2], d}));
    auto acc = table.accessor<float, 2>();
    for (int64_t t = 0; t < grid[0]; ++t)
      for (int64_t h = 0; h < grid[1]; ++h)
        for (int64_t w = 0; w < grid[2]; ++w)
          for (int64_t c = 0; c < d; ++c) {
            int64_t n = (t * grid[1] + h) * grid[2] + w;
            ASSERT_EQ(acc[n][c], static_cast<float>(t + 100 * h + 10000 * w + c))
                << "bucket " << bucket[0] << "x" << bucket[1] << "x" << bucket[2] << " token " << n;
          }
  }
}

TEST(PositionEmbedding, FractionalRowsSitAtTheSamePlaceOfTheFrameInEveryWidth) {
  // Row i of every table holds i: an interpolated row holds the place it was read at.
  FactorizedPositionEmbedding pos(Grid3{4, 3, 6}, 1, /*fractional=*/true);
  {
    torch::NoGradGuard no_grad;
    for (auto* table : {&pos->t, &pos->h, &pos->w})
      table->copy_(torch::arange(table->size(0)).to(torch::kFloat).unsqueeze(1));
  }
  auto rows = [](const torch::Tensor& x) {
    std::vector<float> v(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
    return v;
  };
  // A full-width grid reads the rows themselves; time always does, from frame 0.
  EXPECT_EQ(rows(position_rows(pos->w, 6, true)), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(rows(position_rows(pos->t, 2, false)), (std::vector<float>{0, 1}));
  // 3 of 6 columns: centres at 1/6, 3/6, 5/6 of the frame -> rows 0.5, 2.5, 4.5.
  EXPECT_EQ(rows(position_rows(pos->w, 3, true)), (std::vector<float>{0.5, 2.5, 4.5}));
  // 2 columns -> rows 1, 4; 1 column -> the middle, 2.5; absolute indexing reads rows 0, 1.
  EXPECT_EQ(rows(position_rows(pos->w, 2, true)), (std::vector<float>{1, 4}));
  EXPECT_EQ(rows(position_rows(pos->w, 1, true)), (std::vector<float>{2.5}));
  EXPECT_EQ(rows(position_rows(pos->w, 2, false)), (std::vector<float>{0, 1}));
  // Through forward: grid (2, 1, 2) = t {0, 1} + h {1} (middle of 3) + w {1, 4}, t-major.
  EXPECT_EQ(rows(pos(Grid3{2, 1, 2})), (std::vector<float>{2, 5, 3, 6}));
  // The interpolation is differentiable: each of the two rows gets its share of the gradient.
  position_rows(pos->w, 3, true).sum().backward();
  EXPECT_EQ(rows(pos->w.grad().view({-1})), (std::vector<float>{0.5, 0.5, 0.5, 0.5, 0.5, 0.5}));
  // The right edge of a 2-token and of a 3-token frame of a 6-row table: row 4 and row 4.5,
  // against rows 1 and 2 when indexed from the left edge.
  EXPECT_LT(std::abs(rows(position_rows(pos->w, 2, true))[1] - rows(position_rows(pos->w, 3, true))[2]), 1.0f);
}

TEST(PositionEmbedding, InitGivesEveryTokenADistinctEmbeddingFromTheStart) {
  const int64_t d = 48;
  FactorizedPositionEmbedding pos(Grid3{8, 6, 6}, d);
  at::Generator gen = make_init_generator(0);
  pos->init_weights(gen);
  // Each axis lives in its own third of the channels.
  EXPECT_EQ(pos->t.narrow(1, 16, 32).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(pos->h.narrow(1, 0, 16).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(pos->w.narrow(1, 0, 32).abs().max().item<float>(), 0.0f);
  EXPECT_NEAR(pos->t[3][0].item<float>(), FactorizedPositionEmbeddingImpl::kSinusoidAmplitude * std::sin(3.0), 1e-6);
  EXPECT_NEAR(pos->h[2][17].item<float>(), FactorizedPositionEmbeddingImpl::kSinusoidAmplitude * std::cos(2.0), 1e-6);
  auto table = pos(Grid3{8, 6, 6});  // (288, D)
  auto dist = torch::cdist(table, table);
  dist.fill_diagonal_(1e9);
  EXPECT_GT(dist.min().item<float>(), 0.05f) << "two tokens share a position embedding";
}

TEST(PositionEmbedding, OversizeGridThrowsNamingGridAndLimit) {
  FactorizedPositionEmbedding pos(Grid3{8, 8, 8}, 4);
  try {
    pos(Grid3{8, 8, 12});
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "(8, 8, 12)")) << e.what();
    EXPECT_TRUE(contains(e.what(), "max_grid = (8, 8, 8)")) << e.what();
  }
  EXPECT_THROW(pos(Grid3{9, 1, 1}), reel::UserError);
  EXPECT_NO_THROW(pos(Grid3{8, 8, 8}));
}
