// MPI for the life of a process: initialised with MPI_THREAD_MULTIPLE (the watchdog's thread
// talks to rank 0 while the main thread runs collectives) and finalised at the end.
#pragma once

namespace reel::parallel {

class MpiRuntime {
 public:
  // Initialises MPI unless it already is (then this object does not finalise it). Fatal when the
  // library cannot give MPI_THREAD_MULTIPLE. Works without mpirun (a world of one rank).
  MpiRuntime();
  ~MpiRuntime();  // MPI_Finalize, when this object initialised MPI
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

 private:
  bool owns_ = false;
  int rank_ = 0, world_size_ = 1;
};

}  // namespace reel::parallel
