// Logging: info lines go to stdout on rank 0 only; warnings go to stderr on every rank with
// the rank in front. Thread-safe (one line is written atomically).
#pragma once

#include <string>

#include "common/error.h"

namespace reel {

void log_line(const std::string& line);   // rank 0 only, stdout
void warn_line(const std::string& line);  // every rank, stderr, "[reel rank R] warning: ..."

template <typename... Args>
void log_info(const Args&... args) { log_line(cat(args...)); }
template <typename... Args>
void log_warn(const Args&... args) { warn_line(cat(args...)); }

}  // namespace reel
