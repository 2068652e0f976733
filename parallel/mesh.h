// The device mesh: the named groups of ParallelDims as communicators, made by splitting the
// world once per group (collective over every world rank).
#pragma once

#include <memory>

#include "parallel/communicator.h"
#include "parallel/parallel_dims.h"

namespace reel::parallel {

class Mesh {
 public:
  // `world` must outlive the mesh. dims are resolved against world.size() (UserError when impossible).
  Mesh(Communicator& world, const ParallelDims& dims);

  const ParallelDims& dims() const { return dims_; }
  const MeshCoords& coords() const { return coords_; }
  Communicator& world() { return world_; }
  Communicator& group(MeshGroup g);

 private:
  Communicator& world_;
  ParallelDims dims_;
  MeshCoords coords_;
  std::unique_ptr<Communicator> groups_[5];  // indexed by MeshGroup
};

}  // namespace reel::parallel
