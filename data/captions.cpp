// Captions of synthetic clips: varied training wording, the canonical evaluation wording, and
// the seeded list of evaluation prompts.
#include <cctype>

#include "common/error.h"
#include "data/internal/random.h"
#include "data/synth.h"

namespace reel::data {
namespace {

// Per Motion; every phrase holds the motion's name as a word or as name + "ward", and no other
// direction's name.
const std::vector<std::string>& verb_phrases(int motion) {
  static const std::vector<std::vector<std::string>> phrases = {
      {"moves left", "moves to the left", "slides to the left", "drifts left", "glides leftward",
       "travels to the left", "heads left"},
      {"moves right", "moves to the right", "slides to the right", "drifts right", "glides rightward",
       "travels to the right", "heads right"},
      {"moves up", "moves upward", "rises upward", "drifts up", "floats upward", "travels up", "climbs upward"},
      {"moves down", "moves downward", "sinks down", "drifts down", "falls downward", "slides down",
       "travels downward"},
      {"sits still", "stays still", "stands still", "remains still", "holds still", "is still", "keeps still"},
  };
  return phrases[motion];
}

const std::string& pick(const std::vector<std::string>& options, std::mt19937_64& rng) {
  return options[detail::below(rng, options.size())];
}

// "a" or "an" before `words`.
std::string with_article(const std::string& words) {
  const bool vowel = !words.empty() && std::string("aeiou").find(words[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + words;
}

void check_truth(const Truth& truth) {
  if (truth.color < 0 || truth.color >= int(color_names().size()))
    fail("caption: colour index ", truth.color, " is out of range [0, ", color_names().size(), ")");
  if (truth.shape < 0 || truth.shape >= int(shape_names().size()))
    fail("caption: shape index ", truth.shape, " is out of range [0, ", shape_names().size(), ")");
  if (truth.motion < 0 || truth.motion >= int(motion_names().size()))
    fail("caption: motion index ", truth.motion, " is out of range [0, ", motion_names().size(), ")");
  if (truth.background < 0 || truth.background >= int(background_names().size()))
    fail("caption: background index ", truth.background, " is out of range [0, ", background_names().size(), ")");
}

}  // namespace

std::string make_caption(const Truth& truth, bool is_image, std::mt19937_64& rng, int frame_side) {
  check_truth(truth);
  std::string object = color_names()[truth.color] + " " + shape_names()[truth.shape];
  if (frame_side > 0 && detail::uniform(rng) < 0.75) {
    const double relative = truth.size / frame_side;
    if (relative < 0.15) object = pick({"small", "tiny", "little"}, rng) + " " + object;
    if (relative > 0.19) object = pick({"large", "big"}, rng) + " " + object;
  }
  object = with_article(object);

  std::string background;  // "over a lightly textured grey background", or empty
  if (detail::uniform(rng) < 0.5) {
    std::string what = background_names()[truth.background] + " background";
    if (truth.textured) what = pick({"lightly textured", "textured", "faintly patterned"}, rng) + " " + what;
    background = pick({"over", "on", "against", "in front of"}, rng) + " " + with_article(what);
  }
  auto then_background = [&] { return background.empty() ? std::string() : " " + background; };

  std::string caption;
  if (is_image) {
    if (detail::below(rng, 2) == 0) {
      caption = object + then_background();
    } else {
      caption = pick({"an image of", "a picture of", "a drawing of"}, rng) + " " + object + then_background();
    }
  } else {
    const std::string& verb = pick(verb_phrases(truth.motion), rng);
    switch (detail::below(rng, 3)) {
      case 0: caption = object + " " + verb + then_background(); break;
      case 1:
        caption = background.empty() ? object + " " + verb : background + ", " + object + " " + verb;
        break;
      default:
        caption = pick({"video of", "a clip of", "footage of"}, rng) + " " + object + " that " + verb +
                  then_background();
    }
  }
  if (detail::uniform(rng) < 0.5) caption[0] = char(std::toupper(static_cast<unsigned char>(caption[0])));
  if (detail::uniform(rng) < 0.3) caption += ".";
  return caption;
}

std::string canonical_caption(int color, int shape, int motion) {
  check_truth(Truth{color, shape, motion, 0});
  const std::string& name = motion_names()[motion];
  return with_article(color_names()[color] + " " + shape_names()[shape]) +
         (motion == kStill ? " staying still" : " moving " + name);
}

std::vector<EvalPrompt> eval_prompts(int count, uint64_t seed) {
  if (count < 0) fail("eval_prompts: count ", count, " must not be negative");
  const int colors = int(color_names().size()), motions = int(motion_names().size());
  const int shapes = int(shape_names().size()), combos = colors * motions;
  std::mt19937_64 rng(detail::mix({seed, 0x6576616cull}));
  std::vector<EvalPrompt> prompts;
  prompts.reserve(count);
  for (int cycle = 0; int(prompts.size()) < count; ++cycle) {
    std::vector<int> order(combos);
    for (int i = 0; i < combos; ++i) order[i] = i;
    detail::shuffle(order, rng);
    for (int combo : order) {
      if (int(prompts.size()) == count) break;
      const int color = combo / motions, motion = combo % motions;
      const int shape = (color + motion + cycle) % shapes;
      prompts.push_back({canonical_caption(color, shape, motion), rng(), color, shape, motion});
    }
  }
  return prompts;
}

}  // namespace reel::data
