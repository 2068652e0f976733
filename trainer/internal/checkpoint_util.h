// Small string helpers shared by the checkpoint files (checkpoint.cpp, checkpoint_state.cpp,
// run_dir.cpp). Private to trainer/.
#pragma once

#include <c10/util/ArrayRef.h>

#include <string>

namespace reel::trainer::detail {

// "(2,3,4)"
inline std::string shape_str(c10::IntArrayRef shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + ")";
}

inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace reel::trainer::detail
