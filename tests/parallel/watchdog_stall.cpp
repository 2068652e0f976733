// Test-only program for the watchdog (run by watchdog_stall.sh under mpirun): every rank runs a few
// all_reduces, then one rank stalls (sleeps far past the timeout) while the others enter the
// next collective, or, in p2p mode, rank 0 waits for a message the stalled rank never sends.
// The watchdog must end the job and name the stalled rank.
//   watchdog_stall --stall-rank R --timeout S [--p2p]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"

int main(int argc, char** argv) {
  int stall_rank = 1;
  double timeout = 3;
  bool p2p = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--stall-rank") && i + 1 < argc) stall_rank = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = std::stod(argv[++i]);
    else if (!std::strcmp(argv[i], "--p2p")) p2p = true;
  }
  using namespace reel::parallel;
  MpiRuntime mpi;
  Watchdog watchdog({timeout, /*heartbeat_s=*/0.5});
  auto world = MpiCommunicator::world(watchdog);
  auto t = torch::ones({16});
  for (int i = 0; i < 3; ++i) world->all_reduce(t);
  if (world->rank() == stall_rank) {
    std::fprintf(stderr, "rank %d stalls\n", stall_rank);
    std::this_thread::sleep_for(std::chrono::seconds(int(timeout) * 20 + 100));
  } else if (p2p) {
    if (world->rank() == 0) world->recv(t, stall_rank, /*tag=*/3);
  } else {
    world->all_reduce(t);
  }
  world->barrier();
  std::fprintf(stderr, "rank %d finished: the watchdog did not stop the job\n", world->rank());
  return 0;
}
