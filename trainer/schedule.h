// Schedules: the learning rate over training steps, and the time points the sampler visits.
#pragma once

#include <cstdint>
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

// Movie Gen's linear-quadratic t-schedule with `steps` integration steps, as steps + 1 time
// points from 0 (noise) to 1 (data). The first steps/2 intervals follow a linear schedule of
// `linear_ref` steps (250 in the paper: t_i = i / 250); the rest is a quadratic that joins it
// with the same slope and ends exactly at 1. Monotone increasing.
std::vector<double> linear_quadratic_schedule(int steps, int linear_ref = 250);

}  // namespace reel::trainer
