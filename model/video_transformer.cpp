// The Movie Gen video transformer (see video_transformer.h).
#include "model/video_transformer.h"

#include "common/error.h"
#include "model/init.h"

namespace reel::model {

void validate(const VideoTransformerOptions& o) {
  auto positive = [](const char* field, int64_t v) {
    if (v <= 0) fail("transformer option ", field, " = ", v, " must be positive");
  };
  positive("in_channels", o.in_channels);
  positive("dim", o.dim);
  positive("depth", o.depth);
  positive("heads", o.heads);
  positive("time_freq_dim", o.time_freq_dim);
  const char* axes[3] = {"t", "h", "w"};
  for (int i = 0; i < 3; ++i) {
    positive(cat("patch[", i, "] (", axes[i], ")").c_str(), o.patch[i]);
    positive(cat("max_grid[", i, "] (", axes[i], ")").c_str(), o.max_grid[i]);
  }
  if (o.ffn_dim < 0) fail("transformer option ffn_dim = ", o.ffn_dim, " must be >= 0 (0 = SwiGLU default)");
  if (o.dim % o.heads != 0) {
    fail("transformer option heads = ", o.heads, " does not divide dim = ", o.dim,
         "; pick heads so that dim / heads is an integer");
  }
  if (o.time_freq_dim % 2 != 0) fail("transformer option time_freq_dim = ", o.time_freq_dim, " must be even");
  if (!(o.norm_eps > 0)) fail("transformer option norm_eps = ", o.norm_eps, " must be positive");
}

int64_t resolved_ffn_dim(const VideoTransformerOptions& o) {
  return o.ffn_dim > 0 ? o.ffn_dim : swiglu_hidden_dim(o.dim);
}

VideoTransformerImpl::VideoTransformerImpl(VideoTransformerOptions o) : options_(o) {
  validate(o);
  int64_t patch_dim = o.in_channels * o.patch[0] * o.patch[1] * o.patch[2];
  patch_embed = register_module("patch_embed", torch::nn::Linear(patch_dim, o.dim));
  pos_embed = register_module("pos_embed", FactorizedPositionEmbedding(o.max_grid, o.dim, o.fractional_positions));
  time_embed = register_module("time_embed", TimestepEmbedder(o.time_freq_dim, o.dim));
  adaln = register_module("adaln", torch::nn::Linear(o.dim, 6 * o.dim));
  if (o.pooled_text) text_pool = register_module("text_pool", torch::nn::Linear(o.dim, o.dim));
  if (o.frame_time) frame_time_proj = register_module("frame_time_proj", torch::nn::Linear(o.dim, o.dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    block_list_.emplace_back(o.dim, o.heads, resolved_ffn_dim(o), o.norm_eps, o.qk_norm);
    blocks->push_back(block_list_.back());
  }
  final = register_module("final", FinalLayer(o.dim, patch_dim, o.norm_eps));
}

torch::Tensor VideoTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const TextTokens& text) {
  const auto& o = options_;
  const int64_t frames = x.size(2);
  const torch::Tensor xin = pad_frames(x, o.patch[0]);  // a frame count that patch t does not divide
  Grid3 grid = patch_grid(xin.sizes(), o.patch);
  check_grid_fits(grid, o.max_grid, x.sizes());
  int64_t b = x.size(0);
  if (x.size(1) != o.in_channels) {
    fail("video shape ", x.sizes(), " has ", x.size(1), " channels but transformer in_channels = ", o.in_channels);
  }
  const bool per_frame = t.dim() == 2 && t.size(1) == frames;
  REEL_CHECK(t.size(0) == b && (t.dim() == 1 || per_frame), "t must be (B) = (", b, ") or (B, F) = (", b, ", ",
             frames, "), got ", t.sizes());
  if (per_frame && !frame_time_proj)
    fail("a noise level per frame (t ", t.sizes(), ") needs a model built with model.frame_time: true");
  REEL_CHECK(text.tokens.dim() == 3 && text.tokens.size(0) == b && text.tokens.size(2) == o.dim,
             "text tokens must be (B, S, dim) = (", b, ", S, ", o.dim, "), got ", text.tokens.sizes());
  REEL_CHECK(text.mask.dim() == 2 && text.mask.size(0) == b && text.mask.size(1) == text.tokens.size(1),
             "text mask must be (B, S) matching tokens ", text.tokens.sizes(), ", got ", text.mask.sizes());

  auto pos = pos_embed(grid);                               // (N, D), broadcast over B
  auto h = patch_embed(patchify(xin, o.patch));             // (B, N, D)
  auto emb = time_embed(per_frame ? t.mean(1) : t);         // (B, D)
  if (text_pool) {
    auto mask = text.mask.unsqueeze(-1).to(text.tokens.scalar_type());
    emb = emb + text_pool((text.tokens * mask).sum(1) / mask.sum(1).clamp_min(1));
  }
  auto time_act = torch::silu(emb);                         // (B, D)
  auto shared_mod = adaln(time_act).view({b, 6, o.dim});    // (B, 6, D)
  if (frame_time_proj) {  // (B, N, D): each token's position and its frame's noise level
    torch::Tensor tf = per_frame ? t : t.unsqueeze(1).expand({b, frames});
    if (xin.size(2) != frames)  // padded frames take the last frame's level, as pad_frames copies it
      tf = torch::cat({tf, tf.narrow(1, frames - 1, 1).expand({b, xin.size(2) - frames})}, 1);
    tf = tf.reshape({b, grid[0], o.patch[0]}).mean(2);  // one level per patch of frames
    auto level = frame_time_proj(torch::silu(time_embed(tf.reshape({-1})))).view({b, grid[0], 1, o.dim});
    pos = (pos.view({1, grid[0], grid[1] * grid[2], o.dim}) + level).view({b, -1, o.dim});
  }
  if (sequence.split) {  // sequence parallel: this rank's tokens and their positions
    h = sequence.split(h, 1);
    pos = sequence.split(pos, pos.dim() - 2);
    shared_mod = ParallelRegion::apply(sequence.shared, shared_mod);
  }
  for (size_t i = 0; i < block_list_.size(); ++i) {
    BlockFn run = [block = block_list_[i]](const std::vector<torch::Tensor>& in) mutable {
      return block(in[0], in[1], TextTokens{in[2], in[3]});
    };
    std::vector<torch::Tensor> inputs = {h + pos, shared_mod, text.tokens, text.mask};
    h = runner_ ? runner_(static_cast<int64_t>(i), inputs, run) : run(inputs);
  }
  if (sequence.gather) h = sequence.gather(h, 1);
  h = final(h, time_act);
  if (sequence.gather_out) h = sequence.gather_out(h, 1);
  auto out = unpatchify(h, o.patch, o.in_channels, xin.size(2), x.size(3), x.size(4));
  return xin.size(2) == frames ? out : out.narrow(2, 0, frames);  // the padding frames' outputs dropped
}

void VideoTransformerImpl::init_weights(at::Generator& gen) {
  init_linear_xavier(patch_embed, gen);
  pos_embed->init_weights(gen);
  time_embed->init_weights(gen);
  init_linear_zero(adaln);
  if (text_pool) init_linear_xavier(text_pool, gen);
  if (frame_time_proj) init_linear_zero(frame_time_proj);
  for (auto& block : block_list_) block->init_weights(gen);
  final->init_weights();
}

}  // namespace reel::model
