// Fault injection (see test_hooks.h).
#include "common/test_hooks.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "common/runtime.h"

namespace reel {

void test_kill_point(const char* where, int64_t step) {
  const char* at = std::getenv("REEL_TEST_KILL_AT");
  if (at == nullptr || std::string(at) != std::string(where) + ":" + std::to_string(step)) return;
  const char* rank = std::getenv("REEL_TEST_KILL_RANK");
  if (launch_info().rank != (rank ? std::atoi(rank) : 0)) return;
  if (const char* once = std::getenv("REEL_TEST_KILL_ONCE")) {
    const int fd = ::open(once, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return;  // fired before
    ::close(fd);
  }
  std::raise(SIGKILL);
}

}  // namespace reel
