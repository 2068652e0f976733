#include "trainer/probe.h"

#include <cmath>

#include "common/error.h"
#include "data/synth.h"
#include "trainer/flow_matching.h"
#include "trainer/task.h"

namespace reel::trainer {

std::vector<std::array<float, 2>> colour_centroids(const torch::Tensor& frames, int color) {
  if (frames.dim() != 4 || frames.size(3) != 3 || frames.scalar_type() != torch::kUInt8)
    fail("colour_centroids: frames must be uint8 (F, H, W, 3), got ", frames.sizes(), " ", frames.scalar_type());
  const std::array<uint8_t, 3> rgb = data::color_rgb(color);
  torch::Tensor dir = torch::tensor({float(rgb[0]), float(rgb[1]), float(rgb[2])});
  dir = dir - dir.mean();
  dir = dir / dir.norm().clamp_min(1e-6);
  const int64_t F = frames.size(0), H = frames.size(1), W = frames.size(2);
  torch::Tensor px = frames.to(torch::kFloat32).view({F, H * W, 3});
  torch::Tensor median = std::get<0>(px.median(1, /*keepdim=*/true));                // (F, 1, 3)
  torch::Tensor w = ((px - median) * dir).sum(2).clamp_min(0).view({F, H, W});      // (F, H, W)
  torch::Tensor xs = torch::arange(W, torch::kFloat32).add(0.5).view({1, 1, W});
  torch::Tensor ys = torch::arange(H, torch::kFloat32).add(0.5).view({1, H, 1});
  torch::Tensor total = w.sum({1, 2});
  torch::Tensor cx = (w * xs).sum({1, 2}) / total.clamp_min(1e-6), cy = (w * ys).sum({1, 2}) / total.clamp_min(1e-6);
  std::vector<std::array<float, 2>> out(F);
  for (int64_t f = 0; f < F; ++f) {
    const bool empty = total[f].item<float>() <= 0;  // nothing of the colour: the frame's centre
    out[f] = {empty ? W / 2.0f : cx[f].item<float>(), empty ? H / 2.0f : cy[f].item<float>()};
  }
  return out;
}

nlohmann::json probe_motion(InferenceModel& m, const ProbeOptions& o) {
  if (!(o.t >= 0 && o.t < 1)) fail("probe: t = ", o.t, " must lie in [0, 1)");
  if (o.noises < 1) fail("probe: noises = ", o.noises, " must be at least 1");
  if (o.color < 0 || o.color >= int(data::color_names().size())) fail("probe: colour index ", o.color, " out of range");
  if (o.shape < 0 || o.shape >= int(data::shape_names().size())) fail("probe: shape index ", o.shape, " out of range");
  const data::Bucket model_shape = sample_shape(m, o.bucket);
  const FlowMatchingOptions flow = flow_options(m.recipe);
  const int64_t channels = m.model->options().transformer.in_channels;
  torch::NoGradGuard no_grad;
  m.model->eval();
  std::vector<torch::Tensor> noise;
  for (int i = 0; i < o.noises; ++i) {
    at::Generator gen = at::detail::createCPUGenerator(o.seed + uint64_t(i));
    noise.push_back(sample_noise({channels, model_shape.frames, model_shape.height, model_shape.width},
                                 flow.frame_correlation, gen));
  }
  const torch::Tensor x0 = torch::stack(noise);
  const torch::Tensor t = torch::full({o.noises}, o.t);
  // The predicted clean clips for one prompt, one per noise, in model space (N, C, F', H', W').
  auto predict = [&](int color, int motion) {
    const std::string text = conditioning_text(data::canonical_caption(color, o.shape, motion), o.fps);
    model::TextTokens tokens = m.model->encode_text(std::vector<std::string>(o.noises, text));
    torch::Tensor v = output_to_velocity(m.model->forward_with_text(x0, t, tokens), x0, t, flow);
    return x0 + (1 - o.t) * v;
  };
  const auto& motions = data::motion_names();
  std::vector<torch::Tensor> pred(motions.size());
  nlohmann::json per_motion = nlohmann::json::object();
  for (size_t k = 0; k < motions.size(); ++k) {
    pred[k] = predict(o.color, int(k));
    const torch::Tensor mean = pred[k].mean(0, /*keepdim=*/true);
    const torch::Tensor frames = m.decoder->decode(mean, o.bucket.frames)[0];  // (F, H, W, 3)
    const auto c = colour_centroids(frames, o.color);
    std::vector<float> xs, ys;
    for (const auto& p : c) {
      xs.push_back(p[0]);
      ys.push_back(p[1]);
    }
    per_motion[motions[k]] = {{"x", xs}, {"y", ys}, {"dx", xs.back() - xs.front()}, {"dy", ys.back() - ys.front()}};
  }
  const int other = (o.color + 2) % int(data::color_names().size());
  // The swapped-colour prediction also records how each block's self-attention spreads its weights.
  const auto& blocks = m.model->transformer->block_list();
  for (model::VideoBlock block : blocks) block->attn->keep_entropy = true;  // a copy of the holder: the same module
  const torch::Tensor swapped = predict(other, data::kLeft);
  nlohmann::json entropy = nlohmann::json::array();
  for (model::VideoBlock block : blocks) {
    block->attn->keep_entropy = false;
    const torch::Tensor e = block->attn->entropy;
    entropy.push_back(std::vector<float>(e.data_ptr<float>(), e.data_ptr<float>() + e.numel()));
  }
  const int64_t tokens = video_tokens(m.recipe, model_shape.frames, model_shape.height, model_shape.width);
  auto rms = [](const torch::Tensor& a, const torch::Tensor& b) { return (a - b).pow(2).mean().sqrt().item<double>(); };
  nlohmann::json r;
  r["t"] = o.t;
  r["color"] = data::color_names()[o.color];
  r["shape"] = data::shape_names()[o.shape];
  r["noises"] = o.noises;
  r["bucket"] = o.bucket.name();
  r["motions"] = per_motion;
  r["attention"] = {{"tokens", tokens}, {"uniform_entropy", std::log(double(tokens))}, {"entropy", entropy}};
  r["rms"] = {{"left_right", rms(pred[data::kLeft], pred[data::kRight])},
              {"left_up", rms(pred[data::kLeft], pred[data::kUp])},
              {"left_still", rms(pred[data::kLeft], pred[data::kStill])},
              {"up_down", rms(pred[data::kUp], pred[data::kDown])},
              {"colour_swap", rms(pred[data::kLeft], swapped)}};
  return r;
}

}  // namespace reel::trainer
