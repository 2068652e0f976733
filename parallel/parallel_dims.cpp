// The parallel layout (see parallel_dims.h).
#include "parallel/parallel_dims.h"

#include "common/error.h"

namespace reel::parallel {

std::string ParallelDims::describe() const {
  return cat("dp_replicate ", dp_replicate, " x dp_shard ", dp_shard, " x cp ", cp, " x tp ", tp);
}

ParallelDims ParallelDims::resolved(int world_size) const {
  const std::string factors = cat("parallel.dp_replicate = ", dp_replicate, ", parallel.dp_shard = ", dp_shard,
                                  ", parallel.cp = ", cp, ", parallel.tp = ", tp, "; world size ", world_size);
  if (dp_replicate < 1 || cp < 1 || tp < 1 || (dp_shard < 1 && dp_shard != -1))
    fail("impossible mesh: ", factors, ". Every factor must be >= 1 (dp_shard may be -1: the ranks left over)");
  ParallelDims d = *this;
  const int others = dp_replicate * cp * tp;
  if (d.dp_shard == -1) {
    if (world_size % others != 0)
      fail("impossible mesh: ", factors, ". dp_replicate x cp x tp = ", others, " does not divide the world size ",
           world_size, "; change a factor or the number of ranks");
    d.dp_shard = world_size / others;
  }
  if (d.world_size() != world_size)
    fail("impossible mesh: ", factors, ". dp_replicate x dp_shard x cp x tp = ", d.world_size(),
         " but the job has ", world_size, " ranks; make the product equal the number of ranks (or set dp_shard: -1)");
  return d;
}

MeshCoords mesh_coords(const ParallelDims& d, int rank) {
  REEL_CHECK(rank >= 0 && rank < d.world_size(), "rank ", rank, " outside the mesh ", d.describe());
  MeshCoords c;
  c.tp = rank % d.tp;
  rank /= d.tp;
  c.cp = rank % d.cp;
  rank /= d.cp;
  c.shard = rank % d.dp_shard;
  c.replicate = rank / d.dp_shard;
  return c;
}

int mesh_rank(const ParallelDims& d, const MeshCoords& c) {
  return ((c.replicate * d.dp_shard + c.shard) * d.cp + c.cp) * d.tp + c.tp;
}

const char* mesh_group_name(MeshGroup g) {
  switch (g) {
    case MeshGroup::kTp: return "tp";
    case MeshGroup::kCp: return "cp";
    case MeshGroup::kFsdp: return "fsdp";
    case MeshGroup::kReplicate: return "replicate";
    case MeshGroup::kDp: return "dp";
  }
  return "?";
}

std::vector<int> mesh_group_ranks(const ParallelDims& d, MeshGroup group, int rank) {
  const MeshCoords me = mesh_coords(d, rank);
  std::vector<int> ranks;
  auto add = [&](MeshCoords c) { ranks.push_back(mesh_rank(d, c)); };
  MeshCoords c = me;
  switch (group) {
    case MeshGroup::kTp:
      for (c.tp = 0; c.tp < d.tp; ++c.tp) add(c);
      break;
    case MeshGroup::kCp:
      for (c.cp = 0; c.cp < d.cp; ++c.cp) add(c);
      break;
    case MeshGroup::kFsdp:  // shard-major, cp-minor: consecutive ranks of the group are neighbours
      for (c.shard = 0; c.shard < d.dp_shard; ++c.shard)
        for (c.cp = 0; c.cp < d.cp; ++c.cp) add(c);
      break;
    case MeshGroup::kReplicate:
      for (c.replicate = 0; c.replicate < d.dp_replicate; ++c.replicate) add(c);
      break;
    case MeshGroup::kDp:
      for (c.replicate = 0; c.replicate < d.dp_replicate; ++c.replicate)
        for (c.shard = 0; c.shard < d.dp_shard; ++c.shard) add(c);
      break;
  }
  return ranks;
}

}  // namespace reel::parallel
