// The parallel layout of a job, one checked value (torchtitan's ParallelDims): the world is
// dp_replicate x dp_shard x cp x tp ranks, tp innermost (neighbouring ranks, one node), then cp,
// then dp_shard, then dp_replicate:
//   rank = ((replicate * dp_shard + shard) * cp + cp_index) * tp + tp_index
// Named groups: tp, cp, fsdp (dp_shard x cp: the ranks that shard parameters), replicate
// (HSDP's replicas), dp (dp_replicate x dp_shard: the ranks that take different samples).
#pragma once

#include <string>
#include <vector>

namespace reel::parallel {

struct ParallelDims {
  int dp_replicate = 1;
  int dp_shard = -1;  // -1: the ranks left over by the others
  int cp = 1;
  int tp = 1;

  // A copy with dp_shard filled in. UserError, printing every factor and the world size, when a
  // factor is not positive (dp_shard may be -1) or the product is not world_size.
  ParallelDims resolved(int world_size) const;
  int world_size() const { return dp_replicate * dp_shard * cp * tp; }
  std::string describe() const;  // "dp_replicate 1 x dp_shard 2 x cp 1 x tp 2"
};

// A rank's place in the layout.
struct MeshCoords {
  int replicate = 0, shard = 0, cp = 0, tp = 0;
};
MeshCoords mesh_coords(const ParallelDims& dims, int rank);  // dims resolved
int mesh_rank(const ParallelDims& dims, const MeshCoords& c);

// The world ranks of each named group that `rank` belongs to, in group-rank order.
enum class MeshGroup { kTp, kCp, kFsdp, kReplicate, kDp };
const char* mesh_group_name(MeshGroup g);
std::vector<int> mesh_group_ranks(const ParallelDims& dims, MeshGroup group, int rank);

}  // namespace reel::parallel
