// Evaluation of a checkpoint on the synthetic dataset's held-out prompts.
#include "trainer/eval.h"

#include <chrono>
#include <filesystem>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/loader.h"
#include "data/synth.h"
#include "trainer/evaluator.h"
#include "trainer/prompt_file.h"
#include "trainer/sampler.h"
#include "trainer/task.h"
#include "trainer/trainer.h"

namespace reel::trainer {

nlohmann::json run_eval(const std::string& checkpoint, const std::string& out_dir, const EvalOptions& opt) {
  auto start = std::chrono::steady_clock::now();
  InferenceModel m = load_inference_model(checkpoint);
  const Recipe& r = m.recipe;
  const int count = opt.prompts > 0 ? opt.prompts : static_cast<int>(r.eval.prompts);
  const uint64_t seed = static_cast<uint64_t>(opt.seed >= 0 ? opt.seed : r.eval.seed);

  GenerateOptions g;
  g.steps = opt.steps > 0 ? opt.steps : static_cast<int>(r.eval.steps);
  g.cfg = opt.cfg >= 0 ? opt.cfg : r.eval.cfg;
  g.stagger = opt.stagger >= 0 ? opt.stagger : r.eval.stagger;
  const data::Bucket pixels = data::Bucket::parse(r.sample.bucket);
  g.bucket = sample_shape(m, pixels);
  g.fps = r.sample.fps;
  g.flow = flow_options(r);

  std::vector<PromptSpec> set;
  if (!opt.prompts_file.empty()) {
    set = read_prompt_file(opt.prompts_file, seed);
  } else {
    for (const data::EvalPrompt& p : data::eval_prompts(count, seed)) set.push_back({p.prompt, p.seed, p.color, p.shape, p.motion});
  }
  std::vector<std::string> prompts;
  std::vector<uint64_t> seeds;
  for (const auto& p : set) {
    prompts.push_back(p.prompt);
    seeds.push_back(p.seed);
  }
  log_info("eval: ", set.size(), " prompts, ", g.steps, " steps, cfg ", g.cfg, ", bucket ",
           pixels.name(), ", ", m.ema ? "EMA" : "raw", " weights of step ", m.step);
  torch::Tensor clips = m.decoder->decode(generate(m.model, prompts, seeds, g), pixels.frames);

  std::vector<std::array<uint8_t, 3>> palette;
  for (size_t c = 0; c < data::color_names().size(); ++c) palette.push_back(data::color_rgb(static_cast<int>(c)));
  const bool video = pixels.frames > 1;
  int ok[3] = {0, 0, 0}, counted[3] = {0, 0, 0};  // colour, shape, motion
  nlohmann::json per_prompt = nlohmann::json::array();
  auto name = [](const std::vector<std::string>& names, int k) {
    return k >= 0 && k < static_cast<int>(names.size()) ? names[k] : std::string("none");
  };
  for (size_t i = 0; i < set.size(); ++i) {
    ClipAnalysis a = analyze_clip(clips[static_cast<int64_t>(i)], palette);
    const int expected[3] = {set[i].color, set[i].shape, set[i].motion}, measured[3] = {a.color, a.shape, a.motion};
    const char* keys[3] = {"color", "shape", "motion"};
    const std::vector<std::string>* names[3] = {&data::color_names(), &data::shape_names(), &data::motion_names()};
    nlohmann::json rec = {{"prompt", set[i].prompt},
                          {"seed", set[i].seed},
                          {"expected", nlohmann::json::object()},
                          {"measured", {{"found", a.found}, {"dx", a.dx}, {"dy", a.dy}}}};
    for (int k = 0; k < 3; ++k) {
      rec["measured"][keys[k]] = name(*names[k], measured[k]);
      if (expected[k] < 0) continue;
      rec["expected"][keys[k]] = name(*names[k], expected[k]);
      const bool good = measured[k] == expected[k];
      rec[std::string(keys[k]) + "_ok"] = good;
      ok[k] += good;
      ++counted[k];
    }
    per_prompt.push_back(rec);
  }
  auto accuracy = [&](int k) {
    return counted[k] > 0 ? nlohmann::json(static_cast<double>(ok[k]) / counted[k]) : nlohmann::json(nullptr);
  };
  nlohmann::json result = {{"checkpoint", m.path},
                           {"step", m.step},
                           {"ema", m.ema},
                           {"prompts", set.size()},
                           {"prompts_file", opt.prompts_file},
                           {"sampler", {{"steps", g.steps}, {"cfg", g.cfg}, {"stagger", g.stagger}, {"bucket", pixels.name()}}},
                           {"color_accuracy", accuracy(0)},
                           {"motion_accuracy", video ? accuracy(2) : nlohmann::json(nullptr)},
                           {"shape_accuracy", accuracy(1)}};

  std::string data_dir = opt.data_dir.empty() ? r.data.dir : opt.data_dir;
  if (std::filesystem::exists(data_dir + "/val")) {
    data::Dataset val = data::Dataset::open(data_dir + "/val");
    ValidationResult v = validation_loss(m.model, val, r, r.trainer.val_samples);
    result["val_loss"] = v.loss;
    result["val_loss_t"] = v.loss_at_t;
    result["val_loss_uncond"] = v.loss_uncond;
    result["val_t"] = v.t;
  } else {
    log_warn("eval: no validation set at '", data_dir, "/val'; eval.json has no val_loss (pass --data DIR)");
    result["val_loss"] = nullptr;
  }
  result["per_prompt"] = per_prompt;
  if (opt.write_videos) {
    write_samples(out_dir, prompts, seeds, clips, static_cast<int>(g.fps), static_cast<int>(r.sample.scale));
    nlohmann::json videos = nlohmann::json::array();
    for (size_t i = 0; i < set.size(); ++i) videos.push_back(sample_file_name(i));
    result["videos"] = videos;
  }
  result["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  make_dirs(out_dir);
  write_file_atomic(out_dir + "/eval.json", result.dump(2) + "\n");
  return result;
}

}  // namespace reel::trainer
