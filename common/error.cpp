// Fatal check failures: print where and on which rank, then take the whole job down.
#include "common/error.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "common/runtime.h"

namespace reel::detail {

void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  LaunchInfo info = launch_info();
  std::fprintf(stderr, "[reel] FATAL %s:%d rank %d/%d on %s: check '%s' failed: %s\n", file, line,
               info.rank, info.world_size, host_name().c_str(), cond, msg.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

}  // namespace reel::detail
