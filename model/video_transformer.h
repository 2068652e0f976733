// The Movie Gen video transformer: noisy video + flow time + text tokens -> velocity.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "model/layers.h"
#include "model/parallel_region.h"
#include "model/patchify.h"
#include "model/position_embedding.h"
#include "model/text_tokens.h"
#include "model/video_block.h"

namespace reel::model {

struct VideoTransformerOptions {
  int64_t in_channels = 3;                       // latent (or pixel) channels C
  std::array<int64_t, 3> patch = {1, 2, 2};      // (t, h, w) patch = patch-embedding kernel = stride
  int64_t dim = 128;                             // model width D
  int64_t depth = 4;                             // blocks
  int64_t heads = 4;                             // attention heads; must divide dim
  int64_t ffn_dim = 0;                           // SwiGLU hidden width; 0 -> swiglu_hidden_dim(dim)
                                                 // = round_up(ceil(8*dim/3), 32): 128 -> 352, 6144 -> 16384
  std::array<int64_t, 3> max_grid = {8, 8, 8};   // position-table sizes in patches (t, h, w)
  int64_t time_freq_dim = 256;                   // sinusoidal time features before the time MLP; even
  double norm_eps = 1e-6;                        // RMSNorm epsilon
  bool pooled_text = false;                      // add Linear(masked mean of the text tokens) to the
                                                 // time embedding (reaches every adaLN); not in Movie Gen
  bool qk_norm = false;                          // self-attention's q and k RMS-normalised per head
  bool frame_time = false;                       // per-frame noise levels: frame_time_proj below
  bool fractional_positions = false;             // h and w positions as fractions of the frame
                                                 // (FactorizedPositionEmbedding); not in Movie Gen
};

// Throws UserError naming the field and value when an option is out of range.
void validate(const VideoTransformerOptions& o);
// ffn_dim with the 0 default resolved.
int64_t resolved_ffn_dim(const VideoTransformerOptions& o);

// tokens = Linear(patchify(x)) (equivalent to a Conv3d with kernel = stride = patch; counted as
// C*pt*ph*pw*D + D parameters); time embedding e = MLP(sinusoidal(1000 t)); shared adaLN
// m = Linear(D -> 6D)(SiLU(e)) (see video_block.h); before EVERY block the factorized t/h/w
// position embedding is added (Movie Gen); then FinalLayer and unpatchify. With pooled_text,
// e += text_pool(masked mean over the text tokens) before the SiLU, so the caption also scales
// and shifts every token through adaLN, not only through cross-attention. With frame_time, t may
// be (B, F), one noise level per frame: adaLN takes the embedding of the clip's mean t, and each
// token's position embedding gains frame_time_proj(SiLU(time_embed(t of its frame))) (a zero-
// initialised D -> D Linear), so a token knows how noisy its own frame is (t (B) gives every
// frame the clip's t).
// Parameter names: patch_embed.*, pos_embed.{t,h,w}, time_embed.*, adaln.*, text_pool.* (only
// with pooled_text), frame_time_proj.* (only with frame_time), blocks.<i>.*, final.*.
// How the transformer runs block `index`: return run(inputs), doing whatever else around it.
// inputs = {x + position embedding, shared adaLN modulation, text tokens, text mask}; run may be
// called again on other tensors of the same shapes (activation checkpointing recomputes it in
// backward). parallel/ installs one (FSDP gathers the block's parameters around it), so the model
// itself stays free of parallelism.
using BlockFn = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;
using BlockRunner =
    std::function<torch::Tensor(int64_t index, const std::vector<torch::Tensor>& inputs, const BlockFn& run)>;

class VideoTransformerImpl : public torch::nn::Module {
 public:
  explicit VideoTransformerImpl(VideoTransformerOptions o);
  // x (B, C, F, H, W); t (B), or (B, F) with frame_time, float in [0, 1]; text.tokens (B, S, dim),
  // text.mask bool (B, S)
  // -> velocity (B, C, F, H, W). Throws UserError (naming the shape) when F/H/W do not divide by
  // the patch, the patch grid exceeds max_grid, or the channels are not in_channels.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const TextTokens& text);
  void init_weights(at::Generator& gen);
  const VideoTransformerOptions& options() const { return options_; }
  const std::vector<VideoBlock>& block_list() const { return block_list_; }
  // Replaces how blocks are run (an empty function: call them directly, the default).
  void set_block_runner(BlockRunner runner) { runner_ = std::move(runner); }
  // Sequence parallel (empty: every rank runs every token): the blocks see this rank's tokens.
  SequenceRegion sequence;

  torch::nn::Linear patch_embed{nullptr};        // C*pt*ph*pw -> D
  FactorizedPositionEmbedding pos_embed{nullptr};
  TimestepEmbedder time_embed{nullptr};
  torch::nn::Linear adaln{nullptr};              // D -> 6*D, shared by all blocks
  torch::nn::Linear text_pool{nullptr};          // D -> D, only with options.pooled_text
  torch::nn::Linear frame_time_proj{nullptr};    // D -> D, only with options.frame_time
  torch::nn::ModuleList blocks{nullptr};
  FinalLayer final{nullptr};

 private:
  VideoTransformerOptions options_;
  std::vector<VideoBlock> block_list_;  // the same modules as `blocks`, typed
  BlockRunner runner_;
};
TORCH_MODULE(VideoTransformer);

}  // namespace reel::model
