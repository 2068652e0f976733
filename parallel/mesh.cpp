// The device mesh (see mesh.h).
#include "parallel/mesh.h"

#include "common/error.h"

namespace reel::parallel {

Mesh::Mesh(Communicator& world, const ParallelDims& dims)
    : world_(world), dims_(dims.resolved(world.size())), coords_(mesh_coords(dims_, world.rank())) {
  for (MeshGroup g : {MeshGroup::kTp, MeshGroup::kCp, MeshGroup::kFsdp, MeshGroup::kReplicate, MeshGroup::kDp}) {
    const std::vector<int> ranks = mesh_group_ranks(dims_, g, world.rank());
    // Every member computes the same list: its smallest rank names the group, the position orders it.
    int position = 0;
    while (ranks[position] != world.rank()) ++position;
    auto& slot = groups_[static_cast<int>(g)];
    slot = world.split(ranks.front(), position, mesh_group_name(g));
    REEL_CHECK(slot->size() == int(ranks.size()), "mesh group ", mesh_group_name(g), " has ", slot->size(),
               " ranks, expected ", ranks.size());
  }
}

Communicator& Mesh::group(MeshGroup g) { return *groups_[static_cast<int>(g)]; }

}  // namespace reel::parallel
