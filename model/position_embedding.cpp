// Factorized position embeddings (see position_embedding.h).
#include "model/position_embedding.h"

#include <cmath>

#include "common/error.h"
#include "model/init.h"

namespace reel::model {

void check_grid_fits(Grid3 grid, Grid3 max_grid, torch::IntArrayRef video_shape) {
  for (int i = 0; i < 3; ++i) {
    if (grid[i] >= 1 && grid[i] <= max_grid[i]) continue;
    std::string input = video_shape.empty() ? std::string() : cat("video shape ", video_shape, ": ");
    fail(input, "patch grid (t, h, w) = (", grid[0], ", ", grid[1], ", ", grid[2],
         ") exceeds the position tables, max_grid = (", max_grid[0], ", ", max_grid[1], ", ", max_grid[2],
         "); raise transformer.max_grid or use smaller inputs");
  }
}

FactorizedPositionEmbeddingImpl::FactorizedPositionEmbeddingImpl(Grid3 max_grid, int64_t dim, bool fractional)
    : max_grid_(max_grid), fractional_(fractional) {
  t = register_parameter("t", torch::empty({max_grid[0], dim}));
  h = register_parameter("h", torch::empty({max_grid[1], dim}));
  w = register_parameter("w", torch::empty({max_grid[2], dim}));
}

torch::Tensor position_rows(const torch::Tensor& table, int64_t n, bool fractional) {
  const int64_t m = table.size(0);
  REEL_CHECK(n >= 1 && n <= m, "position_rows: ", n, " positions from a table of ", m, " rows");
  if (!fractional || n == m) return table.narrow(0, 0, n);
  // Places in fp32 on the table's device (exact for any realistic grid, whatever the table's dtype).
  auto at = ((torch::arange(n, table.options().dtype(torch::kFloat32)) + 0.5) * (double(m) / double(n)) - 0.5)
                .clamp(0, double(m - 1));
  auto lo = at.floor();
  auto frac = (at - lo).to(table.scalar_type()).unsqueeze(1);  // (n, 1)
  auto lo_rows = lo.to(torch::kInt64), hi_rows = (lo_rows + 1).clamp_max(m - 1);
  return table.index_select(0, lo_rows) * (1 - frac) + table.index_select(0, hi_rows) * frac;
}

torch::Tensor FactorizedPositionEmbeddingImpl::forward(Grid3 grid) {
  check_grid_fits(grid, max_grid_);
  int64_t d = t.size(1);
  auto pos = t.narrow(0, 0, grid[0]).view({grid[0], 1, 1, d}) +
             position_rows(h, grid[1], fractional_).view({1, grid[1], 1, d}) +
             position_rows(w, grid[2], fractional_).view({1, 1, grid[2], d});  // (Tg, Hg, Wg, D)
  return pos.view({grid[0] * grid[1] * grid[2], d});
}

namespace {

// table[p, begin + 2i] = sin(p * f_i), table[p, begin + 2i + 1] = cos(p * f_i), f_i = 10000^(-2i / width)
// over channels [begin, begin + width); the other channels are zero.
void fill_sinusoids(const torch::Tensor& table, int64_t begin, int64_t width, double amplitude) {
  torch::NoGradGuard no_grad;
  table.zero_();
  const int64_t pairs = width / 2;
  if (pairs == 0) return;
  auto positions = torch::arange(table.size(0), table.options()).unsqueeze(1);  // (L, 1)
  auto freqs = torch::exp(torch::arange(pairs, table.options()) *
                          (-std::log(10000.0) * 2.0 / static_cast<double>(width)));  // (pairs)
  auto angles = positions * freqs.unsqueeze(0);                                    // (L, pairs)
  auto block = table.narrow(1, begin, 2 * pairs).view({table.size(0), pairs, 2});
  block.select(2, 0).copy_(angles.sin() * amplitude);
  block.select(2, 1).copy_(angles.cos() * amplitude);
}

}  // namespace

void FactorizedPositionEmbeddingImpl::init_weights(at::Generator& /*gen*/) {
  const int64_t d = t.size(1), third = d / 3;
  fill_sinusoids(t, 0, third, kSinusoidAmplitude);
  fill_sinusoids(h, third, third, kSinusoidAmplitude);
  fill_sinusoids(w, 2 * third, d - 2 * third, kSinusoidAmplitude);
}

}  // namespace reel::model
