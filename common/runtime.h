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

// Process settings for a training or sampling process; call first thing in main().
//  - glibc malloc keeps freed memory for reuse (no trimming; blocks below 32 MiB come from the
//    heap, not mmap), so a step's activation buffers are recycled instead of faulting fresh pages
//    in on every step.
//  - OpenMP workers spin between the many short parallel regions of a step instead of sleeping
//    and waking through the kernel (OMP_WAIT_POLICY=ACTIVE). libgomp reads the variable once,
//    when it is loaded, so when it is unset the process sets it and re-executes itself once.
//    An explicit OMP_WAIT_POLICY (PASSIVE when several processes share the cores) wins.
void configure_process(char** argv);

std::string version();      // "0.1.0"
std::string git_commit();   // short commit hash of the build, or "unknown"

}  // namespace reel
