// Evaluation runs over a run's checkpoints (see eval_run.h).
#include "trainer/eval_run.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "trainer/metrics.h"

namespace reel::trainer {
namespace {

namespace fs = std::filesystem;

// step -> file of every complete checkpoint (temporaries of an unfinished write are not listed).
std::map<int64_t, std::string> checkpoints(const std::string& run_dir) {
  std::map<int64_t, std::string> out;
  std::error_code ec;
  static const std::regex name(R"(step_(\d+)\.h5)");
  for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    std::smatch m;
    const std::string file = e.path().filename().string();
    if (std::regex_match(file, m, name)) out[std::stoll(m[1])] = e.path().string();
  }
  return out;
}

int64_t final_step(const std::string& run_dir) {
  const std::string recipe = run_dir + "/recipe.yaml";
  if (!fs::exists(recipe)) return -1;
  try {
    return YAML::Load(read_file(recipe))["trainer"]["steps"].as<int64_t>();
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

int eval_run(const EvalRunOptions& o) {
  if (!o.watch && !fs::is_directory(fs::path(o.run_dir) / "checkpoints"))  // watching waits for the run to start
    fail("eval-run: '", o.run_dir, "' has no checkpoints/ directory; give a run directory (run.dir of a recipe)");
  const std::string jsonl = o.run_dir + "/eval.jsonl";
  std::vector<nlohmann::json> records = read_jsonl(jsonl, /*skip_bad_lines=*/false);
  std::map<int64_t, bool> done;
  for (const auto& r : records) done[r.at("step").get<int64_t>()] = true;
  int evaluated = 0;
  auto waited_since = std::chrono::steady_clock::now();
  for (;;) {
    bool any = false;
    for (const auto& [step, file] : checkpoints(o.run_dir)) {
      if (done.count(step)) continue;
      char dir[64];
      std::snprintf(dir, sizeof dir, "eval/step_%08lld", static_cast<long long>(step));
      const nlohmann::json r = run_eval(file, o.run_dir + "/" + dir, o.eval);
      nlohmann::json rec = {{"step", step}, {"checkpoint", fs::path(file).filename().string()}, {"dir", dir}};
      for (const char* key : {"color_accuracy", "motion_accuracy", "shape_accuracy", "val_loss", "val_loss_t", "val_t",
                              "val_loss_uncond", "prompts", "prompts_file", "sampler", "ema", "seconds"})
        if (r.contains(key)) rec[key] = r[key];
      if (r.contains("videos")) {
        rec["videos"] = nlohmann::json::array();
        for (size_t i = 0; i < r["videos"].size(); ++i)
          rec["videos"].push_back({{"file", std::string(dir) + "/" + r["videos"][i].get<std::string>()},
                                   {"prompt", r["per_prompt"][i]["prompt"]}});
      }
      records.push_back(rec);
      std::sort(records.begin(), records.end(),
                [](const nlohmann::json& a, const nlohmann::json& b) { return a.at("step").get<int64_t>() < b.at("step").get<int64_t>(); });
      std::string text;
      for (const auto& x : records) text += x.dump() + "\n";
      write_file_atomic(jsonl, text);
      done[step] = true;
      ++evaluated;
      any = true;
      log_info("eval-run: step ", step, ": color ", rec.value("color_accuracy", nlohmann::json()).dump(), ", motion ",
               rec.value("motion_accuracy", nlohmann::json()).dump(), ", val_loss ",
               rec.value("val_loss", nlohmann::json()).dump(), " -> ", jsonl);
    }
    if (!o.watch) break;
    const int64_t last = final_step(o.run_dir);
    if (last >= 0 && done.count(last)) break;
    const auto now = std::chrono::steady_clock::now();
    if (any) waited_since = now;
    if (o.max_wait_seconds > 0 && std::chrono::duration<double>(now - waited_since).count() > o.max_wait_seconds) {
      log_info("eval-run: no new checkpoint in ", o.max_wait_seconds, " s; stopping (rerun to continue)");
      break;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.poll_seconds));
  }
  return evaluated;
}

}  // namespace reel::trainer
