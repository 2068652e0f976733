// The model registry: model name -> spec (builder, named sizes, analytic parameter count).
//
// New models are added by adding a spec in registry.cpp, not by editing the trainer. The table is
// built on first use and is read-only afterwards (safe to read from any thread).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/t2v.h"

namespace reel::model {

struct ModelSpec {
  std::string name, description;
  std::map<std::string, T2VOptions> sizes;  // named sizes; every spec has "tiny"
  std::function<T2VModel(const T2VOptions&)> build;            // allocates; call init_weights after
  std::function<int64_t(const T2VOptions&)> param_count;       // analytic, allocates nothing
};

// Throws UserError listing the known names when `name` is not registered.
const ModelSpec& find_model(const std::string& name);
std::vector<std::string> model_names();  // sorted

// The named size of a spec; throws UserError listing the known sizes when `size` is unknown.
const T2VOptions& find_size(const ModelSpec& spec, const std::string& size);

}  // namespace reel::model
