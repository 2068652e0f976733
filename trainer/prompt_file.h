// Prompt files, the one format `reel sample`, `reel eval` and `reel eval-run` read: one prompt per
// line, or JSON lines {"prompt": TEXT, "seed": N, "color": NAME, "shape": NAME, "motion": NAME}
// where only "prompt" is required; the expected truth (names from the synthetic dataset's
// vocabulary, data/synth.h) lets the evaluators score the sample. `reel data synth` writes its
// held-out set as DIR/eval_prompts.jsonl in this format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace reel::trainer {

struct PromptSpec {
  std::string prompt;
  uint64_t seed = 0;                  // "seed", else base_seed + the prompt's index
  int color = -1, shape = -1, motion = -1;  // expected truth; -1 = not given
};

// UserError naming path:line for unreadable JSON, a missing prompt, a negative seed or an
// unknown colour, shape or motion name; and for a file with no prompts.
std::vector<PromptSpec> read_prompt_file(const std::string& path, uint64_t base_seed);

// The prompts of this rank when `world` ranks share the file: every world-th from `rank`.
std::vector<size_t> rank_share(size_t count, int rank, int world);

}  // namespace reel::trainer
