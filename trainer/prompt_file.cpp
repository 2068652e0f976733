// Prompt files (see prompt_file.h).
#include "trainer/prompt_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "common/error.h"
#include "data/synth.h"

namespace reel::trainer {

std::vector<PromptSpec> read_prompt_file(const std::string& path, uint64_t base_seed) {
  std::ifstream in(path);
  if (!in) fail("cannot read prompt file '", path, "'");
  std::vector<PromptSpec> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    PromptSpec p;
    p.seed = base_seed + out.size();
    if (line[0] != '{') {
      p.prompt = line;
      out.push_back(p);
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail(path, ":", number, ": not valid JSON: ", e.what());
    }
    if (!j.contains("prompt") || !j["prompt"].is_string()) fail(path, ":", number, ": needs a string \"prompt\"");
    p.prompt = j["prompt"].get<std::string>();
    if (j.contains("seed")) {
      if (!j["seed"].is_number_unsigned()) fail(path, ":", number, ": \"seed\" must be a non-negative integer");
      p.seed = j["seed"].get<uint64_t>();
    }
    auto truth = [&](const char* key, const std::vector<std::string>& names) {
      if (!j.contains(key)) return -1;
      const std::string v = j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
      auto it = std::find(names.begin(), names.end(), v);
      if (it == names.end()) {
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        fail(path, ":", number, ": \"", key, "\" = ", v, " is not one of ", known);
      }
      return static_cast<int>(it - names.begin());
    };
    p.color = truth("color", data::color_names());
    p.shape = truth("shape", data::shape_names());
    p.motion = truth("motion", data::motion_names());
    out.push_back(p);
  }
  if (out.empty()) fail("prompt file '", path, "' holds no prompts");
  return out;
}

std::vector<size_t> rank_share(size_t count, int rank, int world) {
  std::vector<size_t> mine;
  for (size_t i = static_cast<size_t>(rank); i < count; i += static_cast<size_t>(world)) mine.push_back(i);
  return mine;
}

}  // namespace reel::trainer
