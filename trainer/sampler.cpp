// Flow-ODE sampling with classifier-free guidance, and writing the samples.
#include "trainer/sampler.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/fs.h"
#include "data/video_io.h"
#include "model/registry.h"
#include "trainer/checkpoint.h"
#include "trainer/schedule.h"
#include "trainer/tae_trainer.h"
#include "trainer/task.h"

namespace reel::trainer {

torch::Tensor PixelDecoder::decode(const torch::Tensor& x, int64_t) {
  // (B, 3, F, H, W) -> (B, F, H, W, 3)
  return x.detach().clamp(-1, 1).add(1).mul(127.5).round().to(torch::kUInt8).permute({0, 2, 3, 4, 1}).contiguous();
}

torch::Tensor TaeDecoder::decode(const torch::Tensor& x, int64_t frames) {
  torch::NoGradGuard no_grad;
  const int64_t tile = 4;  // latent frames per decoded tile, overlapping by 2 (model/tae.h)
  torch::Tensor pixels = x.size(2) > tile ? tae_->decode_tiled(x, frames, tile, 2) : tae_->decode(x, frames);
  return PixelDecoder().decode(pixels, frames);
}

data::Bucket TaeDecoder::model_bucket(const data::Bucket& pixels) const {
  const auto [t, h, w] = tae_->latent_shape(pixels.frames, pixels.height, pixels.width);
  return {int(t), int(h), int(w)};
}

InferenceModel load_inference_model(const std::string& argument) {
  const std::string path = resolve_checkpoint_argument(argument);
  Checkpoint ckpt = load_checkpoint(path);
  InferenceModel m;
  m.recipe = checkpoint_recipe(ckpt, path);
  m.step = ckpt.step;
  m.path = path;
  m.decoder = std::make_shared<PixelDecoder>();
  if (m.recipe.model.in_channels != 3) {  // a latent model: its TAE decodes
    auto tae = ckpt.meta.find("latent_tae");
    if (tae == ckpt.meta.end())
      fail(path, ": this model generates ", m.recipe.model.in_channels, "-channel latents but the checkpoint names no ",
           "TAE to decode them (meta latent_tae, taken from the dataset's latents.json)");
    model::TaeModel decoder = load_tae(resolve_checkpoint_argument(tae->second));
    if (decoder->options().latent_channels != m.recipe.model.in_channels)
      fail(path, ": its TAE '", tae->second, "' has ", decoder->options().latent_channels, " latent channels, the model ",
           m.recipe.model.in_channels);
    m.decoder = std::make_shared<TaeDecoder>(decoder);
  }
  const model::ModelSpec& spec = model::find_model(m.recipe.model.name);
  m.model = spec.build(t2v_options(m.recipe));
  load_module_state(*m.model, ckpt, "model/");
  // Prefer EMA weights: replace every parameter that has an EMA copy.
  torch::NoGradGuard no_grad;
  for (auto& p : m.model->named_parameters()) {
    auto it = ckpt.tensors.find("ema/" + p.key());
    if (it != ckpt.tensors.end()) {
      p.value().copy_(it->second);
      m.ema = true;
    }
  }
  m.model->eval();
  return m;
}

data::Bucket sample_shape(const InferenceModel& m, const data::Bucket& pixels) {
  const data::Bucket shape = m.decoder->model_bucket(pixels);
  const model::T2VOptions o = t2v_options(m.recipe);
  const auto& v = o.transformer;
  if (shape.frames > v.max_grid[0] * v.patch[0] || shape.height > v.max_grid[1] * v.patch[1] ||
      shape.width > v.max_grid[2] * v.patch[2])
    fail(m.path, ": clips of ", pixels.name(), " are ", shape.name(), " in the model's space, more than its position ",
         "tables cover (model.max_frames/max_height/max_width ", m.recipe.model.max_frames, "x",
         m.recipe.model.max_height, "x", m.recipe.model.max_width, "); sample a smaller bucket");
  return shape;
}

torch::Tensor generate(model::T2VModel& model, const std::vector<std::string>& prompts,
                       const std::vector<uint64_t>& seeds, const GenerateOptions& o) {
  REEL_CHECK(prompts.size() == seeds.size(), prompts.size(), " prompts but ", seeds.size(), " seeds");
  torch::NoGradGuard no_grad;
  model->eval();
  const std::vector<double> times = linear_quadratic_schedule(o.steps);
  const int64_t channels = model->options().transformer.in_channels;
  const bool guided = o.cfg != 1.0;
  std::vector<torch::Tensor> outputs;
  for (size_t start = 0; start < prompts.size(); start += o.batch_size) {
    size_t end = std::min(prompts.size(), start + static_cast<size_t>(o.batch_size));
    const int64_t b = static_cast<int64_t>(end - start);
    std::vector<torch::Tensor> noise;
    std::vector<std::string> texts;
    for (size_t i = start; i < end; ++i) {
      at::Generator gen = at::detail::createCPUGenerator(seeds[i]);
      noise.push_back(sample_noise({channels, o.bucket.frames, o.bucket.height, o.bucket.width}, o.flow.frame_correlation, gen));
      texts.push_back(conditioning_text(prompts[i], o.fps));
    }
    if (guided) texts.insert(texts.end(), b, std::string());  // unconditional half
    model::TextTokens text = model->encode_text(texts);
    torch::Tensor x = torch::stack(noise);  // (b, C, F, H, W)
    const int64_t frames = x.size(2), steps = static_cast<int64_t>(times.size()) - 1;
    const int64_t lag = frames > 1 ? std::llround(o.stagger * static_cast<double>(steps)) : 0;
    // Frame f at global step j is at step clamp(j - offset_f, 0, steps) of its schedule: its time
    // there, and the step to the next one (0 while it waits or once it is done).
    auto frame_times = [&](int64_t j, std::vector<float>& now, std::vector<float>& step) {
      now.resize(static_cast<size_t>(frames));
      step.resize(static_cast<size_t>(frames));
      for (int64_t f = 0; f < frames; ++f) {
        const int64_t offset = std::llround(static_cast<double>(lag * f) / static_cast<double>(frames - 1));
        const auto k = static_cast<size_t>(std::clamp<int64_t>(j - offset, 0, steps));
        const auto k1 = static_cast<size_t>(std::clamp<int64_t>(j + 1 - offset, 0, steps));
        now[static_cast<size_t>(f)] = static_cast<float>(times[k]);
        step[static_cast<size_t>(f)] = static_cast<float>(times[k1] - times[k]);
      }
    };
    std::vector<float> now, step;
    for (int64_t j = 0; j < steps + lag; ++j) {
      torch::Tensor xin = guided ? torch::cat({x, x}) : x;
      torch::Tensor t, dt;
      if (lag == 0) {
        t = torch::full({xin.size(0)}, times[static_cast<size_t>(j)]);
        dt = torch::scalar_tensor(times[static_cast<size_t>(j + 1)] - times[static_cast<size_t>(j)]);
      } else {
        frame_times(j, now, step);
        t = torch::tensor(now).unsqueeze(0).expand({xin.size(0), frames}).contiguous();
        dt = torch::tensor(step).view({1, 1, frames, 1, 1});
      }
      torch::Tensor v = output_to_velocity(model->forward_with_text(xin, t, text), xin, t, o.flow);
      if (guided) {
        torch::Tensor v_cond = v.narrow(0, 0, b), v_uncond = v.narrow(0, b, b);
        v = v_uncond + o.cfg * (v_cond - v_uncond);
      }
      x = x + dt * v;
    }
    outputs.push_back(x);
  }
  return torch::cat(outputs);
}

std::string sample_file_name(size_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "%03zu.mp4", index);
  return name;
}

void write_sample_videos(const std::string& dir, const std::vector<size_t>& indices, const torch::Tensor& clips,
                         int fps, int scale) {
  REEL_CHECK(clips.size(0) == static_cast<int64_t>(indices.size()), clips.size(0), " clips for ", indices.size(), " indices");
  make_dirs(dir);
  for (size_t k = 0; k < indices.size(); ++k)
    data::write_mp4(dir + "/" + sample_file_name(indices[k]), clips[static_cast<int64_t>(k)], fps, scale);
}

void write_sample_index(const std::string& dir, const std::vector<std::string>& prompts,
                        const std::vector<uint64_t>& seeds, const torch::Tensor& clips, int scale) {
  make_dirs(dir);
  std::string lines;
  std::vector<torch::Tensor> sheet;
  for (int64_t i = 0; i < clips.size(0); ++i) {
    sheet.push_back(clips[i]);
    lines += nlohmann::json{{"prompt", prompts[i]}, {"seed", seeds[i]}, {"file", sample_file_name(static_cast<size_t>(i))}}
                 .dump() + "\n";
  }
  data::write_png(dir + "/contact_sheet.png", data::contact_sheet(sheet, 8, std::max(1, scale / 2), 2));
  write_file_atomic(dir + "/samples.jsonl", lines);
}

void write_samples(const std::string& dir, const std::vector<std::string>& prompts,
                   const std::vector<uint64_t>& seeds, const torch::Tensor& clips, int fps, int scale) {
  std::vector<size_t> all(static_cast<size_t>(clips.size(0)));
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  write_sample_videos(dir, all, clips, fps, scale);
  write_sample_index(dir, prompts, seeds, clips, scale);
}

}  // namespace reel::trainer
