// Video <-> token sequence: non-overlapping (t, h, w) patches, flattened t-major.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>

namespace reel::model {

using Grid3 = std::array<int64_t, 3>;  // (t, h, w)

// The patch grid of a video (B, C, F, H, W): (F/pt, H/ph, W/pw). Throws UserError naming the
// shape and the patch when F, H or W is not a multiple of the patch.
Grid3 patch_grid(torch::IntArrayRef video_shape, Grid3 patch);

// (B, C, F, H, W) -> (B, C, F', H, W), F' = F rounded up to a multiple of pt, the new frames
// copies of the last one (replicate padding in time, as the temporal autoencoder pads): an image
// (F = 1) becomes a still clip of pt frames. Returns x itself when F is already a multiple.
torch::Tensor pad_frames(const torch::Tensor& x, int64_t pt);

// (B, C, F, H, W) -> (B, N, C*pt*ph*pw), N = (F/pt)(H/ph)(W/pw). Token n = (t*Hg + h)*Wg + w
// holds patch (t, h, w); its features are ordered (c, dt, dh, dw), the flattening of a Conv3d
// weight (out, C, pt, ph, pw), so a Linear on this equals Conv3d(kernel = stride = patch).
torch::Tensor patchify(const torch::Tensor& x, Grid3 patch);

// The exact inverse: (B, N, C*pt*ph*pw) -> (B, C, F, H, W).
torch::Tensor unpatchify(const torch::Tensor& tokens, Grid3 patch, int64_t C, int64_t F, int64_t H, int64_t W);

}  // namespace reel::model
