// Tensor parallel against one process: the small text-to-video model with its blocks split over
// every rank (tp = world size) gives the one-process output, and every parameter's gradient is
// the matching slice (or, for the parameters every tp rank holds whole, all) of the one-process
// gradient. Also the slicing helpers' round trip.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "parallel/tensor_parallel.h"
#include "tests/parallel/parallel_test_util.h"
#include "tests/parallel/mpi_test_env.h"
#include "trainer/parallelize.h"

namespace reel::parallel {
namespace {

using reel::testing::world;

TEST(TensorParallel, ShardsRoundTrip) {
  auto gen = at::detail::createCPUGenerator(1);
  torch::Tensor w = torch::randn({6 * world().size(), 4 * world().size()}, gen);
  torch::Tensor cols = column_shard(w, 3, world());
  EXPECT_EQ(cols.size(0), 6);
  // Part r of each of the 3 blocks of 2 * size rows.
  EXPECT_TRUE(torch::equal(cols.narrow(0, 2, 2), w.narrow(0, 2 * world().size() + 2 * world().rank(), 2)));
  EXPECT_TRUE(torch::equal(gather_column_shards(cols, 3, world()), w));
  EXPECT_TRUE(torch::equal(gather_row_shards(row_shard(w, world()), world()), w));
}

// The model cut over every world rank (optionally with its tokens split too) gives one process's
// output, and each parameter's gradient (gathered whole for the cut weights) equals one process's.
void expect_matches_one_process(bool sequence_parallel) {
  model::T2VModel ref = reel::testing::small_parallel_model();
  auto [ref_out, ref_grads] = reel::testing::run_small_model(ref);
  model::T2VModel m = reel::testing::small_parallel_model();
  const trainer::TensorParallelPlan plan = trainer::apply_tensor_parallel(*m, world(), sequence_parallel);
  auto [out, grads] = reel::testing::run_small_model(m);
  EXPECT_TRUE(torch::allclose(out, ref_out, 1e-5, 1e-6)) << "max diff " << (out - ref_out).abs().max().item<double>();
  for (const auto& [name, g] : grads) {
    auto cut = plan.find(name);
    torch::Tensor whole = cut == plan.end() ? g : trainer::tensor_parallel_gather(cut->second, g, world());
    const torch::Tensor& expected = ref_grads.at(name);
    double rel = (whole - expected).norm().item<double>() / (expected.norm().item<double>() + 1e-12);
    EXPECT_LT(rel, 1e-5) << name << " on rank " << world().rank();
  }
  EXPECT_EQ(plan.size(), world().size() == 1 ? 0u : 2u * 7u);  // 7 cut weights per block, 2 blocks
}

TEST(TensorParallel, BlocksMatchOneProcess) {
  if (4 % world().size() != 0) GTEST_SKIP() << "4 heads do not split over " << world().size() << " ranks";
  expect_matches_one_process(/*sequence_parallel=*/false);
}

// Sequence parallel: the 8 tokens of each sample split over the ranks between the blocks' layers.
TEST(TensorParallel, SequenceParallelMatchesOneProcess) {
  if (4 % world().size() != 0) GTEST_SKIP() << "4 heads do not split over " << world().size() << " ranks";
  expect_matches_one_process(/*sequence_parallel=*/true);
}

}  // namespace
}  // namespace reel::parallel
