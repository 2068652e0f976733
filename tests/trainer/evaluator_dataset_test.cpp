// The evaluator on the dataset's own clips (data::render_clip, the generator `reel data synth`
// uses), where the truth is known: it must score at least 0.98 on colour and motion.
#include <gtest/gtest.h>

#include "data/synth.h"
#include "trainer/evaluator.h"

using namespace reel;

namespace {

std::vector<std::array<uint8_t, 3>> palette() {
  std::vector<std::array<uint8_t, 3>> p;
  for (size_t c = 0; c < data::color_names().size(); ++c) p.push_back(data::color_rgb(static_cast<int>(c)));
  return p;
}

struct Accuracy {
  double color = 0, motion = 0, shape = 0;
};

Accuracy score_bucket(const data::Bucket& bucket, int repeats) {
  const int colors = static_cast<int>(data::color_names().size());
  const int shapes = static_cast<int>(data::shape_names().size());
  const int motions = bucket.frames > 1 ? static_cast<int>(data::motion_names().size()) : 1;
  int n = 0, color_ok = 0, motion_ok = 0, shape_ok = 0;
  uint64_t seed = 100;
  for (int r = 0; r < repeats; ++r) {
    for (int c = 0; c < colors; ++c) {
      for (int s = 0; s < shapes; ++s) {
        for (int m = 0; m < motions; ++m) {
          int motion = bucket.frames > 1 ? m : data::kStill;
          data::Clip clip = data::render_clip(bucket, c, s, motion, seed++);
          trainer::ClipAnalysis a = trainer::analyze_clip(clip.pixels, palette());
          color_ok += a.color == c;
          motion_ok += a.motion == motion;
          shape_ok += a.shape == s;
          ++n;
        }
      }
    }
  }
  return {double(color_ok) / n, double(motion_ok) / n, double(shape_ok) / n};
}

}  // namespace

TEST(EvaluatorOnDataset, VideoBucketsScoreAtLeast98Percent) {
  for (const char* name : {"8x16x16", "8x16x24"}) {
    Accuracy a = score_bucket(data::Bucket::parse(name), 3);  // 3 x 7 x 3 x 5 = 315 clips
    EXPECT_GE(a.color, 0.98) << name;
    EXPECT_GE(a.motion, 0.98) << name;
    EXPECT_GE(a.shape, 0.9) << name;
  }
}

TEST(EvaluatorOnDataset, ImagesScoreAtLeast98Percent) {
  Accuracy a = score_bucket(data::Bucket::parse("1x16x16"), 5);
  EXPECT_GE(a.color, 0.98);
  EXPECT_GE(a.shape, 0.9);
}

TEST(EvaluatorOnDataset, EvalPromptsNameWhatTheTruthSays) {
  // The held-out prompt set's canonical wording carries the words the evaluator is judged on.
  for (const data::EvalPrompt& p : data::eval_prompts(64, 1234)) {
    EXPECT_NE(p.prompt.find(data::color_names()[p.color]), std::string::npos) << p.prompt;
    EXPECT_NE(p.prompt.find(data::shape_names()[p.shape]), std::string::npos) << p.prompt;
  }
}
