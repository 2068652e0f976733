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
//
// With `fractional`, the spatial axes are indexed by the token's place as a fraction of the frame
// instead of by its index from the top-left corner: along an axis of n tokens and a table of m
// rows, token j sits at row (j + 1/2) m / n - 1/2, linearly interpolated between the two nearest
// rows (n = m gives the rows themselves). The right edge of a narrow frame and of a wide one then
// share embeddings, so what a caption says about place ("starts on the right and moves left")
// means the same thing in every bucket. Time keeps absolute frame indices.
class FactorizedPositionEmbeddingImpl : public torch::nn::Module {
 public:
  FactorizedPositionEmbeddingImpl(Grid3 max_grid, int64_t dim, bool fractional = false);
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
  bool fractional_;
};

TORCH_MODULE(FactorizedPositionEmbedding);

// Rows for n positions of `table` (m, D): its first n rows, or with `fractional` the rows at
// (j + 1/2) m / n - 1/2, interpolated (see FactorizedPositionEmbeddingImpl). n <= m.
torch::Tensor position_rows(const torch::Tensor& table, int64_t n, bool fractional);

}  // namespace reel::model
