// Rank-0 logging.
#include "common/log.h"

#include <cstdio>
#include <mutex>

#include "common/runtime.h"

namespace reel {
namespace {
std::mutex& log_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void log_line(const std::string& line) {
  static const int rank = launch_info().rank;
  if (rank != 0) return;
  std::lock_guard<std::mutex> lock(log_mutex());
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

void warn_line(const std::string& line) {
  static const int rank = launch_info().rank;
  std::lock_guard<std::mutex> lock(log_mutex());
  std::fprintf(stderr, "[reel rank %d] warning: %s\n", rank, line.c_str());
  std::fflush(stderr);
}

}  // namespace reel
