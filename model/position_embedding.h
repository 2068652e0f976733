// Learnable factorized (t, h, w) position embeddings, as Movie Gen uses for video tokens.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "model/patchify.h"

namespace reel::model {

// Throws UserError when `grid` exceeds `max_grid` in any axis (or is empty), naming both and,
// when given, the video shape (B, C, F, H, W) the grid came from.
void check_grid_fits(Grid3 grid, Grid3 max_grid, torch::IntArrayRef video_shape = {});

// Three tables t (max_t, D), h (max_h, D), w (max_w, D). The embedding of token (t, h, w) is
// t[t] + h[h] + w[w]; tokens are ordered as patchify() orders them (t-major).
class FactorizedPositionEmbeddingImpl : public torch::nn::Module {
 public:
  FactorizedPositionEmbeddingImpl(Grid3 max_grid, int64_t dim);
  // grid (Tg, Hg, Wg) -> (Tg*Hg*Wg, D). Throws UserError when the grid exceeds max_grid.
  torch::Tensor forward(Grid3 grid);
  // Sinusoids, each axis in its own third of the channels (t first, then h, then w; zero in the
  // other two thirds), amplitude kSinusoidAmplitude, so that every position is distinct from the
  // first step; then learned. `gen` is unused (the start is deterministic) but kept for symmetry.
  void init_weights(at::Generator& gen);
  static constexpr double kSinusoidAmplitude = 0.5;

  torch::Tensor t, h, w;  // (max_grid[i], D)

 private:
  Grid3 max_grid_;
};
TORCH_MODULE(FactorizedPositionEmbedding);

}  // namespace reel::model
