// What the recipe parser (trainer/recipe.cpp) and its cross-key checks (trainer/recipe_check.cpp)
// share: where each value of a recipe came from, for messages.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <map>
#include <string>

#include "common/error.h"
#include "trainer/recipe.h"

namespace reel::trainer::detail {

// Where values came from, for messages.
struct Context {
  std::string source;                               // file path or "<string>"
  std::map<std::string, std::string> override_of;   // dotted path -> override argument that set it
  std::map<std::string, std::string> where_set;     // dotted key -> where its value was read

  // "file:line:col", or "command line override '...'" for a path an override set (or a path
  // below one), or the bare source when the node has no position.
  std::string where(const std::string& path, const YAML::Mark& mark) const {
    for (std::string p = path; !p.empty();) {
      auto it = override_of.find(p);
      if (it != override_of.end()) return cat("command line override '", it->second, "'");
      size_t dot = p.rfind('.');
      p.resize(dot == std::string::npos ? 0 : dot);
    }
    if (mark.is_null()) return source;
    return cat(source, ":", mark.line + 1, ":", mark.column + 1);
  }

  // Where the first of `keys` that the recipe sets was set; the source when all are defaults.
  std::string at(std::initializer_list<const char*> keys) const {
    for (const char* k : keys) {
      auto it = where_set.find(k);
      if (it != where_set.end()) return it->second;
    }
    return source;
  }
};

// The checks that span keys (divisibility, dependent keys, shapes, paths when check_paths), after
// every key was read and range-checked on its own; UserError naming where the offending key was set.
void check_shapes(const Recipe& r, const Context& ctx, bool check_paths);

}  // namespace reel::trainer::detail
