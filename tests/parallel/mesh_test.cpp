// ParallelDims (pure: factors, errors, rank layout) and the Mesh's groups under mpirun.
#include <gtest/gtest.h>

#include "parallel/mesh.h"
#include "parallel/parallel_dims.h"
#include "tests/parallel/mpi_test_env.h"
#include "tests/test_util.h"

namespace reel::parallel {
namespace {

using reel::testing::expect_user_error;

TEST(ParallelDims, DpShardTakesTheRanksLeftOver) {
  ParallelDims d{1, -1, 2, 2};
  EXPECT_EQ(d.resolved(8).dp_shard, 2);
  EXPECT_EQ(d.resolved(4).dp_shard, 1);
  ParallelDims explicit_dims{2, 2, 1, 1};
  EXPECT_EQ(explicit_dims.resolved(4).world_size(), 4);
}

TEST(ParallelDims, ImpossibleMeshesNameEveryFactor) {
  for (const auto& [dims, world, words] : std::vector<std::tuple<ParallelDims, int, std::string>>{
           {{1, 2, 1, 3}, 8, "= 6 but the job has 8 ranks"},
           {{1, -1, 1, 3}, 8, "does not divide the world size 8"},
           {{0, -1, 1, 1}, 4, "must be >= 1"},
           {{1, -2, 1, 1}, 4, "must be >= 1"},
       }) {
    expect_user_error([&] { dims.resolved(world); }, words);
    expect_user_error([&] { dims.resolved(world); },
                      cat("parallel.dp_replicate = ", dims.dp_replicate, ", parallel.dp_shard = ", dims.dp_shard,
                          ", parallel.cp = ", dims.cp, ", parallel.tp = ", dims.tp, "; world size ", world));
  }
}

TEST(ParallelDims, TpIsInnermostAndCoordsRoundTrip) {
  ParallelDims d{2, 2, 2, 2};
  for (int r = 0; r < 16; ++r) EXPECT_EQ(mesh_rank(d, mesh_coords(d, r)), r);
  MeshCoords c = mesh_coords(d, 11);  // 11 = ((1 * 2 + 0) * 2 + 1) * 2 + 1
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.cp, 1);
  EXPECT_EQ(c.shard, 0);
  EXPECT_EQ(c.replicate, 1);
}

TEST(ParallelDims, GroupsOfOneRank) {
  ParallelDims d{2, 2, 1, 2};  // rank 5: replicate 1, shard 0, cp 0, tp 1
  EXPECT_EQ(mesh_group_ranks(d, MeshGroup::kTp, 5), (std::vector<int>{4, 5}));
  EXPECT_EQ(mesh_group_ranks(d, MeshGroup::kCp, 5), (std::vector<int>{5}));
  EXPECT_EQ(mesh_group_ranks(d, MeshGroup::kFsdp, 5), (std::vector<int>{5, 7}));
  EXPECT_EQ(mesh_group_ranks(d, MeshGroup::kReplicate, 5), (std::vector<int>{1, 5}));
  EXPECT_EQ(mesh_group_ranks(d, MeshGroup::kDp, 5), (std::vector<int>{1, 3, 5, 7}));
  ParallelDims with_cp{1, 2, 2, 1};  // fsdp spans dp_shard x cp
  EXPECT_EQ(mesh_group_ranks(with_cp, MeshGroup::kFsdp, 0), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(mesh_group_ranks(with_cp, MeshGroup::kDp, 1), (std::vector<int>{1, 3}));
}

TEST(Mesh, GroupsAreTheLayoutsRanksAndReduceOverThem) {
  Communicator& w = reel::testing::world();
  const int n = w.size();
  ParallelDims dims{1, -1, 1, n % 2 == 0 ? 2 : 1};
  Mesh mesh(w, dims);
  EXPECT_EQ(mesh.dims().world_size(), n);
  for (MeshGroup g : {MeshGroup::kTp, MeshGroup::kCp, MeshGroup::kFsdp, MeshGroup::kReplicate, MeshGroup::kDp}) {
    Communicator& c = mesh.group(g);
    const auto expected = mesh_group_ranks(mesh.dims(), g, w.rank());
    EXPECT_EQ(c.world_ranks(), expected) << mesh_group_name(g);
    EXPECT_EQ(c.name(), mesh_group_name(g));
    auto t = torch::tensor({double(w.rank())});
    c.all_reduce(t);
    double sum = 0;
    for (int r : expected) sum += r;
    EXPECT_EQ(t.item<double>(), sum) << mesh_group_name(g);
  }
}

}  // namespace
}  // namespace reel::parallel
