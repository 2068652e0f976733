// Learning-rate and sampling schedules.
#include "trainer/schedule.h"

#include <cmath>

#include "common/error.h"

namespace reel::trainer {

bool LrPlateau::observe(double loss, double scheduled) {
  if (patience <= 0) return false;
  if (!std::isfinite(best) || loss < best * (1 - threshold)) {
    best = loss;
    bad = 0;
    return false;
  }
  if (++bad < patience) return false;
  bad = 0;
  if (apply(scheduled) <= floor) return false;  // already at the floor
  scale *= factor;
  return true;
}

double learning_rate(const LrScheduleOptions& o, int64_t step) {
  if (o.warmup_steps > 0 && step < o.warmup_steps) {
    return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  }
  if (o.kind == "constant") return o.lr;
  REEL_CHECK(o.kind == "cosine", "unknown LR schedule '", o.kind, "'");
  int64_t decay_steps = std::max<int64_t>(1, o.total_steps - o.warmup_steps);
  double progress = std::min(1.0, static_cast<double>(step - o.warmup_steps) / decay_steps);
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * progress));
}

std::vector<double> linear_quadratic_schedule(int steps, int linear_ref) {
  if (steps < 2) fail("sampling needs at least 2 steps, got ", steps);
  if (linear_ref < steps) fail("linear_ref (", linear_ref, ") must be >= steps (", steps, ")");
  const int linear = steps / 2;
  const int quad = steps - linear;
  const double slope = 1.0 / linear_ref;          // t per step in the linear part
  const double t_join = linear * slope;           // where the quadratic starts
  // q(u) = t_join + slope * u + a * u^2 for u in [0, quad], q(quad) = 1.
  const double a = (1.0 - t_join - slope * quad) / (static_cast<double>(quad) * quad);
  std::vector<double> t(steps + 1);
  for (int i = 0; i <= linear; ++i) t[i] = i * slope;
  for (int u = 1; u <= quad; ++u) t[linear + u] = t_join + slope * u + a * u * u;
  t[steps] = 1.0;
  return t;
}

}  // namespace reel::trainer
