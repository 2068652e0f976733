// Process-wide facts: launch info, host, threads, version.
#include "common/runtime.h"

#include <malloc.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace reel {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::atoi(v);
}

}  // namespace

LaunchInfo launch_info() {
  LaunchInfo info;
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    info.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    info.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    info.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    info.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  } else if (std::getenv("PMI_SIZE") != nullptr) {
    info.rank = env_int("PMI_RANK", 0);
    info.world_size = env_int("PMI_SIZE", 1);
    info.local_rank = env_int("MPI_LOCALRANKID", 0);
    info.local_size = env_int("MPI_LOCALNRANKS", 1);
  } else if (std::getenv("SLURM_NTASKS") != nullptr && std::getenv("SLURM_PROCID") != nullptr) {
    info.rank = env_int("SLURM_PROCID", 0);
    info.world_size = env_int("SLURM_NTASKS", 1);
    info.local_rank = env_int("SLURM_LOCALID", 0);
    info.local_size = env_int("SLURM_NTASKS_PER_NODE", 1);
  }
  return info;
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

int configure_threads(int threads) {
  if (threads <= 0) {
    int cores = static_cast<int>(std::thread::hardware_concurrency());
    int per_node = std::max(1, launch_info().local_size);
    threads = std::max(1, cores / per_node);
  }
  at::set_num_threads(threads);
  return threads;
}

void configure_process(char** argv) {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("REEL_REEXECUTED") == nullptr) {
    setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
    setenv("REEL_REEXECUTED", "1", 1);  // never loop, even if exec'ing changes nothing
    execv("/proc/self/exe", argv);
    // exec failed (no /proc): carry on with the default policy
  }
}

std::string version() { return REEL_VERSION; }
std::string git_commit() { return REEL_GIT_COMMIT; }

}  // namespace reel
