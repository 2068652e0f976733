// MPI initialisation and finalisation (see mpi_runtime.h).
#include "parallel/mpi_runtime.h"

#include "parallel/internal/mpi_check.h"

namespace reel::parallel {

MpiRuntime::MpiRuntime() {
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized), "MPI_Initialized");
  int provided = 0;
  if (!initialized) {
    MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    owns_ = true;
  } else {
    MPI_CHECK(MPI_Query_thread(&provided), "MPI_Query_thread");
  }
  REEL_CHECK(provided == MPI_THREAD_MULTIPLE, "this MPI library gives thread level ", provided,
             ", Reel needs MPI_THREAD_MULTIPLE (", MPI_THREAD_MULTIPLE, "); use an Open MPI built with thread support");
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_), "MPI_Comm_size");
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

}  // namespace reel::parallel
