// The temporal autoencoder (TAE, Movie Gen): an image VAE inflated to 2.5D. Every convolution is
// a 2D spatial one (1 x k x k) followed by a 1D temporal one (k x 1 x 1) with symmetric replicate
// padding in time; the lowest resolution has spatial then temporal self-attention. Time is
// downsampled by stride-2 temporal convolutions (T -> ceil(T / 2), so any frame count works, one
// included) and upsampled by nearest-neighbour repetition then a convolution, cropped back to the
// encoder's frame count. The latent is a diagonal Gaussian (KL-regularised), 16 channels by
// default, compressed per axis by the options' compression (8 x 8 x 8 in the full recipe).
//
// Inflation: group norms normalise each frame alone, the temporal convolutions start as the
// identity and the temporal attention's output projection at zero, so a fresh TAE is an image VAE
// applied frame by frame (up to its temporal strides). The latent's log-variance starts at -8, so
// the decoder first sees nearly noise-free latents.
//
// Shapes: pixels (B, C, T, H, W) in [-1, 1]; latents (B, latent_channels, T', H', W') with
// T' = T halved (rounded up) log2(compression t) times, H' = H / compression h (H must divide).
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace reel::model {

struct TaeOptions {
  int64_t in_channels = 3;
  int64_t latent_channels = 16;
  std::vector<int64_t> channels = {128, 256, 512, 512};  // per resolution level; levels - 1 downsamplings
  int64_t blocks = 2;                                    // residual blocks per level (decoder: blocks + 1)
  std::array<int64_t, 3> compression = {8, 8, 8};        // t, h, w: powers of 2, each <= 2^(levels - 1)
  bool attention = true;                                 // spatial + temporal attention at the lowest level
  int64_t norm_groups = 32;                              // GroupNorm groups (each level's channels divide)
};

// The published design's sizes (8x8x8, 16 channels), and the tiny one trained here (4x4x4).
TaeOptions tae_full_options();
TaeOptions tae_tiny_options();

// UserError naming the key ("model.tae.compression", ...) and the value for impossible options.
void check_tae_options(const TaeOptions& o);

// Exact parameter count of TaeModel(o) (encoder + decoder), allocating nothing.
int64_t tae_param_count(const TaeOptions& o);

// A 2D spatial convolution (strides h, w) followed by a 1D temporal one (stride t) with replicate
// padding in time. stride = {t, h, w}.
class Conv25dImpl : public torch::nn::Module {
 public:
  Conv25dImpl(int64_t in, int64_t out, int64_t kernel = 3, std::array<int64_t, 3> stride = {1, 1, 1});
  torch::Tensor forward(const torch::Tensor& x);
  void init_weights(at::Generator& gen);  // spatial: N(0, 1/fan_in); temporal: the identity

  torch::nn::Conv3d spatial{nullptr}, temporal{nullptr};

 private:
  int64_t kernel_;
};
TORCH_MODULE(Conv25d);

class TaeResBlockImpl : public torch::nn::Module {
 public:
  TaeResBlockImpl(int64_t in, int64_t out, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv25d conv1{nullptr}, conv2{nullptr};
  torch::nn::Conv3d skip{nullptr};  // 1x1x1 when in != out
};
TORCH_MODULE(TaeResBlock);

// Single-head self-attention over the pixels of each frame (spatial) or the frames of each pixel
// (temporal), with a residual.
class TaeAttentionImpl : public torch::nn::Module {
 public:
  TaeAttentionImpl(int64_t channels, int64_t groups, bool temporal);
  torch::Tensor forward(const torch::Tensor& x);
  void init_weights(at::Generator& gen);  // temporal: output projection zero

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear qkv{nullptr}, out{nullptr};

 private:
  bool temporal_;
};
TORCH_MODULE(TaeAttention);

class TaeModelImpl : public torch::nn::Module {
 public:
  explicit TaeModelImpl(TaeOptions options);

  // Pixels -> the latent distribution's mean and log-variance (clamped to [-30, 20]).
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& x);
  // Latents -> pixels with `frames` frames (<= 0: latent frames x compression t).
  torch::Tensor decode(const torch::Tensor& z, int64_t frames = 0);
  // The frames (or size) at every encoder level for an input of `frames`: [frames, ..., latent].
  std::vector<int64_t> level_frames(int64_t frames) const;
  std::array<int64_t, 3> latent_shape(int64_t frames, int64_t height, int64_t width) const;  // T', H', W'

  // Temporal tiling for long clips (Movie Gen's inference): encode tiles of `tile_frames` frames
  // without overlap; decode tiles of `tile_latents` latent frames overlapping by `overlap_latents`,
  // blended linearly over the overlap. tile_frames must be a multiple of compression t.
  std::pair<torch::Tensor, torch::Tensor> encode_tiled(const torch::Tensor& x, int64_t tile_frames = 32);
  torch::Tensor decode_tiled(const torch::Tensor& z, int64_t frames, int64_t tile_latents = 4,
                             int64_t overlap_latents = 2);

  void init_weights(uint64_t seed);
  const TaeOptions& options() const { return options_; }

 private:
  torch::Tensor run_mid(torch::nn::ModuleList& mid, torch::Tensor h);
  TaeOptions options_;
  int64_t down_h_ = 0, down_w_ = 0, down_t_ = 0;  // log2 of the compression per axis
  Conv25d enc_in_{nullptr}, enc_out_{nullptr}, dec_in_{nullptr}, dec_out_{nullptr};
  torch::nn::ModuleList enc_blocks_{nullptr}, enc_down_{nullptr}, enc_mid_{nullptr};
  torch::nn::ModuleList dec_blocks_{nullptr}, dec_up_{nullptr}, dec_mid_{nullptr};
  torch::nn::GroupNorm enc_norm_{nullptr}, dec_norm_{nullptr};
};
TORCH_MODULE(TaeModel);

// A 3D patch discriminator (PatchGAN over space and time) for the TAE's adversarial loss: per
// patch real/fake logits. Strided in h and w, not in t, so it takes 1-frame images too.
class TaeDiscriminatorImpl : public torch::nn::Module {
 public:
  explicit TaeDiscriminatorImpl(int64_t in_channels = 3, int64_t width = 64, int64_t layers = 3);
  torch::Tensor forward(const torch::Tensor& x);  // (B, C, T, H, W) -> (B, 1, T, H / 2^layers, W / 2^layers)
  void init_weights(uint64_t seed);

  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(TaeDiscriminator);

}  // namespace reel::model
