// main() of the multi-rank test binary: run under `mpirun -np N` by CTest (N = 1, 2, 4). Every rank
// runs every test; only rank 0 prints progress (other ranks print their failures); the exit code
// is non-zero on every rank when a test failed on any rank. A hung collective is caught by the
// watchdog (60 s), so no test run hangs.
#include <gtest/gtest.h>

#include <memory>

#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"
#include "tests/parallel/mpi_test_env.h"

namespace reel::testing {
namespace {
parallel::Communicator* g_world = nullptr;
parallel::Watchdog* g_watchdog = nullptr;
}  // namespace
parallel::Communicator& world() { return *g_world; }
parallel::Watchdog& watchdog() { return *g_watchdog; }
}  // namespace reel::testing

int main(int argc, char** argv) {
  reel::parallel::MpiRuntime mpi;
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = 0;
  {
    reel::parallel::Watchdog watchdog({/*timeout_s=*/60, /*heartbeat_s=*/0.5});
    auto world = reel::parallel::MpiCommunicator::world(watchdog);
    reel::testing::g_world = world.get();
    reel::testing::g_watchdog = &watchdog;
    failed = RUN_ALL_TESTS();
    if (failed) std::fprintf(stderr, "[rank %d] some tests failed\n", mpi.rank());
    torch::Tensor any = torch::tensor({failed}, torch::kInt);
    world->all_reduce(any, reel::parallel::ReduceOp::kMax);
    failed = any.item<int>();
    reel::testing::g_world = nullptr;
    reel::testing::g_watchdog = nullptr;
  }
  return failed;
}
