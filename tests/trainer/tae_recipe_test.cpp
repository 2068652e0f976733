// The TAE recipes: the staged full-size ones are the published design (8x8x8, 16 channels) and the
// tiny ones the 4x4x4 model trained here; each stage 2 starts from its stage 1.
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/fs.h"
#include "model/tae.h"
#include "trainer/recipe.h"
#include "trainer/tae_trainer.h"

namespace reel::trainer {
namespace {

Recipe recipe(const std::string& relative) {
  const std::string path = std::string(REEL_SOURCE_DIR) + "/" + relative;
  return parse_recipe_text(read_file(path), path, {}, /*check_paths=*/false);
}

TEST(TaeRecipes, FullSizeStagesAreThePublishedDesign) {
  const Recipe one = recipe("recipes/tae/01_tae.yaml"), two = recipe("recipes/tae/02_tae_outlier.yaml");
  for (const Recipe* r : {&one, &two}) {
    const model::TaeOptions o = tae_options(*r);
    EXPECT_EQ(o.compression, (std::array<int64_t, 3>{8, 8, 8}));
    EXPECT_EQ(o.latent_channels, 16);
    EXPECT_EQ(model::tae_param_count(o), model::tae_param_count(model::tae_full_options()));
  }
  EXPECT_EQ(one.tae_loss.outlier, 0.0);
  EXPECT_EQ(two.tae_loss.outlier, 1e5);
  EXPECT_EQ(two.tae_loss.outlier_r, 3.0);
  EXPECT_EQ(two.init_from, one.run.dir);
  // The ingest grid: 5 aspect ratios (width / height from 9:16 to 16:9) x 5 durations, 4-16 s.
  const BucketsSection& b = one.data.buckets;
  ASSERT_EQ(b.heights.size(), 5u);
  ASSERT_EQ(b.frames.size(), 5u);
  EXPECT_EQ(b.frames.front() / b.fps, 4);
  EXPECT_EQ(b.frames.back() / b.fps, 16);
  EXPECT_NEAR(double(b.widths.front()) / b.heights.front(), 16.0 / 9, 0.01);
  EXPECT_NEAR(double(b.widths.back()) / b.heights.back(), 9.0 / 16, 0.01);
}

TEST(TaeRecipes, TinyStagesAreTheTinyTae) {
  const Recipe one = recipe("recipes/tiny/tae.yaml"), two = recipe("recipes/tiny/tae_outlier.yaml");
  for (const Recipe* r : {&one, &two}) {
    const model::TaeOptions o = tae_options(*r), tiny = model::tae_tiny_options();
    EXPECT_EQ(o.compression, tiny.compression);
    EXPECT_EQ(o.channels, tiny.channels);
    EXPECT_EQ(o.latent_channels, 16);
    EXPECT_EQ(model::tae_param_count(o), model::tae_param_count(tiny));
  }
  EXPECT_EQ(one.tae_loss.outlier, 0.0);
  EXPECT_GT(two.tae_loss.outlier, 0.0);
  EXPECT_EQ(two.init_from, one.run.dir);
}

TEST(TaeRecipes, BadTaeKeysNameTheKey) {
  try {
    parse_recipe_text("model:\n  name: tae\n  tae:\n    channels: []\n", "bad.yaml", {}, false);
    ADD_FAILURE() << "an empty channel list was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.tae.channels' must be a list of one or more integers"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace reel::trainer
