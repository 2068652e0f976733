// Schedules: the learning rate over training steps, and the time points the sampler visits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace reel::trainer {

struct LrScheduleOptions {
  double lr = 1e-3;            // peak learning rate
  double min_lr = 1e-4;        // floor of the cosine decay (ignored by "constant")
  int64_t warmup_steps = 0;    // linear warmup from lr/warmup_steps to lr
  int64_t total_steps = 1000;  // the cosine reaches min_lr here
  std::string kind = "cosine"; // "cosine" | "constant"
};

// Learning rate for 0-based optimizer step `step`.
double learning_rate(const LrScheduleOptions& options, int64_t step);

// trainer.plateau_*: lowers the learning rate when the validation loss stops improving (Movie
// Gen's 768 px stage, 6e-5 -> 1e-5). The scheduled LR is multiplied by `scale`; after `patience`
// validations in a row without a relative improvement of the best loss by `threshold`, scale is
// multiplied by `factor`, unless the LR is already at `floor`. patience 0 = never.
struct LrPlateau {
  int64_t patience = 0;
  double factor = 0.5, threshold = 1e-3, floor = 0;
  // State, saved in checkpoints.
  double scale = 1.0;
  double best = std::numeric_limits<double>::infinity();
  int64_t bad = 0;

  double apply(double scheduled) const { return scale < 1 ? std::max(scheduled * scale, floor) : scheduled * scale; }
  // Counts one validation loss; true when it lowered the LR (`scheduled`: the schedule's LR now).
  bool observe(double loss, double scheduled);
};

// Movie Gen's linear-quadratic t-schedule with `steps` integration steps, as steps + 1 time
// points from 0 (noise) to 1 (data). The first steps/2 intervals follow a linear schedule of
// `linear_ref` steps (250 in the paper: t_i = i / 250); the rest is a quadratic that joins it
// with the same slope and ends exactly at 1. Monotone increasing.
std::vector<double> linear_quadratic_schedule(int steps, int linear_ref = 250);

}  // namespace reel::trainer
