// Video <-> token sequence (see patchify.h).
#include "model/patchify.h"

#include "common/error.h"

namespace reel::model {

Grid3 patch_grid(torch::IntArrayRef video_shape, Grid3 patch) {
  if (video_shape.size() != 5) fail("video must be (B, C, F, H, W), got shape ", video_shape);
  Grid3 grid{};
  const char* names[3] = {"frames F", "height H", "width W"};
  for (int i = 0; i < 3; ++i) {
    int64_t size = video_shape[2 + i];
    if (patch[i] <= 0 || size <= 0 || size % patch[i] != 0) {
      fail("video shape ", video_shape, " (B, C, F, H, W): ", names[i], " = ", size,
           " is not a positive multiple of the patch ", patch[i], " (patch t,h,w = ", patch[0], "x",
           patch[1], "x", patch[2], "); resize or crop the input");
    }
    grid[i] = size / patch[i];
  }
  return grid;
}

torch::Tensor pad_frames(const torch::Tensor& x, int64_t pt) {
  if (x.dim() != 5) fail("video must be (B, C, F, H, W), got shape ", x.sizes());
  REEL_CHECK(pt >= 1, "patch t must be >= 1, got ", pt);
  const int64_t frames = x.size(2), missing = (pt - frames % pt) % pt;
  if (missing == 0) return x;
  return torch::cat({x, x.narrow(2, frames - 1, 1).expand({-1, -1, missing, -1, -1})}, 2);
}

torch::Tensor patchify(const torch::Tensor& x, Grid3 patch) {
  Grid3 g = patch_grid(x.sizes(), patch);
  int64_t b = x.size(0), c = x.size(1);
  return x.view({b, c, g[0], patch[0], g[1], patch[1], g[2], patch[2]})
      .permute({0, 2, 4, 6, 1, 3, 5, 7})
      .reshape({b, g[0] * g[1] * g[2], c * patch[0] * patch[1] * patch[2]});
}

torch::Tensor unpatchify(const torch::Tensor& tokens, Grid3 patch, int64_t C, int64_t F, int64_t H, int64_t W) {
  int64_t b = tokens.size(0);
  Grid3 g = patch_grid({b, C, F, H, W}, patch);
  if (tokens.dim() != 3 || tokens.size(1) != g[0] * g[1] * g[2] ||
      tokens.size(2) != C * patch[0] * patch[1] * patch[2]) {
    fail("unpatchify: tokens of shape ", tokens.sizes(), " do not match video (C, F, H, W) = (", C, ", ", F,
         ", ", H, ", ", W, ") with patch ", patch[0], "x", patch[1], "x", patch[2], "; expected (B, ",
         g[0] * g[1] * g[2], ", ", C * patch[0] * patch[1] * patch[2], ")");
  }
  return tokens.view({b, g[0], g[1], g[2], C, patch[0], patch[1], patch[2]})
      .permute({0, 4, 1, 5, 2, 6, 3, 7})
      .reshape({b, C, F, H, W});
}

}  // namespace reel::model
