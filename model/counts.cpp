// Analytic parameter counts and FLOPs (see counts.h for the formulas).
#include "model/counts.h"

#include "common/error.h"
#include "model/text_encoder.h"
#include "model/text_encoder_types.h"

namespace reel::model {

int64_t byte_text_encoder_param_count(const ByteTextEncoderOptions& o) { return text_encoder_param_count("byte", o); }

int64_t text_conditioner_param_count(const std::vector<TextEncoderSlotOptions>& slots, int64_t model_dim) {
  validate(slots);
  int64_t total = 0;
  for (const auto& s : slots) {
    total += text_encoder_param_count(s.type, s.encoder) + s.encoder.dim * model_dim + model_dim + 2 * model_dim;
  }
  return total;
}

int64_t video_block_param_count(const VideoTransformerOptions& o) {
  const int64_t d = o.dim, f = resolved_ffn_dim(o);
  return 6 * d + 4 * d * d + d + 4 * d * d + 3 * d * f;
}

int64_t video_transformer_param_count(const VideoTransformerOptions& o) {
  validate(o);
  int64_t d = o.dim, f = resolved_ffn_dim(o);
  int64_t p = o.in_channels * o.patch[0] * o.patch[1] * o.patch[2];
  int64_t patch_embed = p * d + d;
  int64_t positions = (o.max_grid[0] + o.max_grid[1] + o.max_grid[2]) * d;
  int64_t time_mlp = o.time_freq_dim * d + d + d * d + d;
  int64_t shared_adaln = 6 * d * d + 6 * d;
  int64_t text_pool = o.pooled_text ? d * d + d : 0;
  int64_t frame_time = o.frame_time ? d * d + d : 0;
  int64_t block = video_block_param_count(o);
  int64_t final_layer = 2 * d * d + 2 * d + d * p + p;
  return patch_embed + positions + time_mlp + shared_adaln + text_pool + frame_time + o.depth * block + final_layer;
}

int64_t param_count(const T2VOptions& o) {
  return text_conditioner_param_count(o.text, o.transformer.dim) + video_transformer_param_count(o.transformer);
}

FlopCount t2v_forward_flops(const T2VOptions& o, int64_t video_tokens, int64_t text_len) {
  return t2v_forward_flops(o, video_tokens, std::vector<int64_t>(o.text.size(), text_len));
}

FlopCount t2v_forward_flops(const T2VOptions& o, int64_t video_tokens, const std::vector<int64_t>& text_lens) {
  validate(o.transformer);
  validate(o.text);
  REEL_CHECK(text_lens.size() == o.text.size(), "t2v_forward_flops: ", text_lens.size(), " text lengths for ",
             o.text.size(), " slots");
  const auto& tr = o.transformer;
  double d = static_cast<double>(tr.dim), f = static_cast<double>(resolved_ffn_dim(tr));
  double depth = static_cast<double>(tr.depth);
  double p = static_cast<double>(tr.in_channels * tr.patch[0] * tr.patch[1] * tr.patch[2]);
  double n = static_cast<double>(video_tokens), s = 0;
  for (int64_t l : text_lens) s += static_cast<double>(l);

  double w_video = 2 * p * d + depth * (6 * d * d + 3 * d * f);
  double w_sample = static_cast<double>(tr.time_freq_dim) * d + d * d + 6 * d * d + 2 * d * d +
                    (tr.pooled_text ? d * d : 0.0);
  double w_text = depth * 2 * d * d * s;
  double text_attention = 0, frozen = 0;
  for (size_t i = 0; i < o.text.size(); ++i) {
    const auto& slot = o.text[i];
    const double l = static_cast<double>(text_lens[i]), de = static_cast<double>(slot.encoder.dim);
    const TextEncoderCost cost = text_encoder_cost(slot.type, slot.encoder);
    const double encoder = cost.matmul_weights_per_token * l, attention = cost.attention_width * 4 * l * l;
    w_text += encoder + de * d * l;
    text_attention += attention;
    if (!slot.trainable) frozen += 2 * encoder + attention;
  }
  double block_attention = depth * (4 * n * n * d + 4 * n * s * d);
  double blocks = 2 * (depth * (6 * d * d + 3 * d * f) * n + depth * 2 * d * d * s) + block_attention;
  return {w_video, 2 * (w_video * n + w_sample + w_text) + block_attention + text_attention, blocks,
          2 * w_video * n + block_attention, frozen};
}

}  // namespace reel::model
