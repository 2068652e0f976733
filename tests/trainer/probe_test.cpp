// The motion probe's colour centroid: on clips of the synthetic dataset it finds the object's
// centre in every frame, whatever the background.
#include <gtest/gtest.h>

#include "common/error.h"
#include "data/synth.h"
#include "trainer/probe.h"

namespace {

using reel::data::Bucket;

TEST(Probe, ColourCentroidFollowsTheRenderedCircle) {
  int checked = 0;
  for (int motion = 0; motion < 5; ++motion) {
    for (int color = 0; color < 7; ++color) {
      for (uint64_t seed = 0; seed < 4; ++seed) {
        // Circles: their centroid is their centre. Textured or plain, dark or light grey.
        const auto clip = reel::data::render_clip(Bucket{8, 16, 24}, color, /*shape=*/0, motion,
                                                  seed * 131 + color * 7 + motion, 8, /*textured_fraction=*/0.5);
        const auto c = reel::trainer::colour_centroids(clip.pixels, color);
        ASSERT_EQ(c.size(), 8u);
        for (int f = 0; f < 8; ++f) {
          EXPECT_NEAR(c[f][0], clip.truth.centers[f][0], 0.35) << "colour " << color << " motion " << motion << " frame " << f;
          EXPECT_NEAR(c[f][1], clip.truth.centers[f][1], 0.35) << "colour " << color << " motion " << motion << " frame " << f;
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 5 * 7 * 4 * 8);
}

TEST(Probe, ColourCentroidIgnoresOtherColoursAndEmptyFrames) {
  // A blue circle looked for as red: blue projects negatively on red's direction, so the frames
  // hold nothing red and read as the frame's centre.
  const auto clip = reel::data::render_clip(Bucket{4, 16, 16}, /*color=*/2, 0, /*motion=*/0, 5, 8, 0.0);
  const auto c = reel::trainer::colour_centroids(clip.pixels, /*color=*/0);
  for (const auto& p : c) {
    EXPECT_FLOAT_EQ(p[0], 8.0f);
    EXPECT_FLOAT_EQ(p[1], 8.0f);
  }
  EXPECT_THROW(reel::trainer::colour_centroids(clip.pixels.to(torch::kFloat32), 0), reel::UserError);
}

}  // namespace
