// Factorized position embeddings (see position_embedding.h).
#include "model/position_embedding.h"

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

FactorizedPositionEmbeddingImpl::FactorizedPositionEmbeddingImpl(Grid3 max_grid, int64_t dim)
    : max_grid_(max_grid) {
  t = register_parameter("t", torch::empty({max_grid[0], dim}));
  h = register_parameter("h", torch::empty({max_grid[1], dim}));
  w = register_parameter("w", torch::empty({max_grid[2], dim}));
}

torch::Tensor FactorizedPositionEmbeddingImpl::forward(Grid3 grid) {
  check_grid_fits(grid, max_grid_);
  int64_t d = t.size(1);
  auto pos = t.narrow(0, 0, grid[0]).view({grid[0], 1, 1, d}) + h.narrow(0, 0, grid[1]).view({1, grid[1], 1, d}) +
             w.narrow(0, 0, grid[2]).view({1, 1, grid[2], d});  // (Tg, Hg, Wg, D)
  return pos.view({grid[0] * grid[1] * grid[2], d});
}

void FactorizedPositionEmbeddingImpl::init_weights(at::Generator& gen) {
  init_normal(t, 0.02, gen);
  init_normal(h, 0.02, gen);
  init_normal(w, 0.02, gen);
}

}  // namespace reel::model
