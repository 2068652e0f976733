// Process-wide facts: rank and world size as the launcher set them, the host name, the
// number of compute threads, and the build's version. Rank detection reads Open MPI's, PMI's
// and Slurm's variables, so it works before (and without) MPI_Init.
#pragma once

#include <cstdint>
#include <string>

namespace reel {

struct LaunchInfo {
  int rank = 0;        // global rank
  int world_size = 1;  // number of ranks
  int local_rank = 0;  // rank on this node
  int local_size = 1;  // ranks on this node
};

// Reads OMPI_COMM_WORLD_*, PMI_*, SLURM_* (first found wins); 0/1 when launched alone.
LaunchInfo launch_info();

std::string host_name();

// Sets LibTorch's intra-op threads. threads <= 0 means every core of this node divided among
// the ranks on it (at least 1). Returns the number set.
int configure_threads(int threads);

std::string version();      // "0.1.0"
std::string git_commit();   // short commit hash of the build, or "unknown"

}  // namespace reel
