// `reel eval`: samples a fixed held-out prompt set from a checkpoint, scores the clips with the
// evaluators (colour, motion, shape), adds the fixed-t validation losses, and writes eval.json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace reel::trainer {

struct EvalOptions {
  int prompts = -1;        // number of prompts; -1 = the checkpoint recipe's eval.prompts
  int64_t seed = -1;       // prompt-set seed; -1 = eval.seed
  int steps = -1;          // sampler steps; -1 = eval.steps
  double cfg = -1;         // guidance; < 0 = eval.cfg
  double stagger = -1;     // frame after frame (GenerateOptions::stagger); < 0 = eval.stagger
  std::string data_dir;    // dataset for validation losses; "" = the recipe's data.dir
  std::string prompts_file;  // a prompt file (trainer/prompt_file.h) instead of the seeded set;
                             // each accuracy counts the prompts that give that truth
  bool write_videos = true;
};

// Writes OUT/eval.json (and the sampled videos with a contact sheet) and returns the JSON:
// color_accuracy, motion_accuracy, shape_accuracy (null when no prompt gives that truth, or
// motion for images), val_loss, val_loss_t, val_t, per_prompt, videos (file names in OUT), ...
nlohmann::json run_eval(const std::string& checkpoint, const std::string& out_dir, const EvalOptions& options);

}  // namespace reel::trainer
