// What `reel train` and `reel bench step` share: the recipe read and the mesh checked on every
// rank (a fault is reported by rank 0 only; every rank exits 2), and, with more than one rank,
// MPI, the watchdog and the mesh.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parallel/mesh.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"
#include "trainer/recipe.h"

namespace reel::cli {

class TrainingLaunch {
 public:
  // nullopt on ranks other than 0 when the recipe or mesh is bad (rank 0 throws the UserError):
  // the caller returns kUserErrorExit.
  static std::optional<std::unique_ptr<TrainingLaunch>> start(const std::string& recipe_path,
                                                              const std::vector<std::string>& overrides);
  ~TrainingLaunch();  // with several ranks: a barrier, so no rank finalises MPI while another needs it

  const trainer::Recipe& recipe() const { return recipe_; }
  trainer::Recipe& recipe() { return recipe_; }
  parallel::Mesh* mesh() { return mesh_.get(); }  // null for one process

 private:
  TrainingLaunch() = default;
  trainer::Recipe recipe_;
  parallel::ParallelDims dims_;
  std::unique_ptr<parallel::MpiRuntime> mpi_;
  std::unique_ptr<parallel::Watchdog> watchdog_;
  std::unique_ptr<parallel::MpiCommunicator> world_;
  std::unique_ptr<parallel::Mesh> mesh_;
};

}  // namespace reel::cli
