// Context-parallel attention under mpirun: every mode gives, on each rank, the rows of one
// process's attention for its part of the sequence, and the gradients of q, k and v (each rank's
// loss being its rows' part of one loss) equal one process's for that part. Then the whole small
// text-to-video model with its tokens split over the ranks (and, on 4 ranks, over cp 2 x tp 2 with
// sequence parallel): the output equals one process's and the gradients averaged over cp equal
// one process's.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "model/attention.h"
#include "parallel/context_parallel.h"
#include "parallel/mesh.h"
#include "tests/parallel/parallel_test_util.h"
#include "tests/parallel/mpi_test_env.h"
#include "trainer/parallelize.h"

namespace reel::parallel {
namespace {

using reel::testing::world;

using reel::testing::seeded;

torch::Tensor local_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return model::attention(q, k, v, torch::Tensor());
}

class CpAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(CpAttention, MatchesOneProcess) {
  const int n = world().size(), r = world().rank();
  const std::vector<int64_t> shape = {2, 4, 3 * n, 8};  // 4 heads: ulysses splits them over 1, 2 or 4 ranks
  torch::Tensor q = seeded(shape, 1), k = seeded(shape, 2), v = seeded(shape, 3), w = seeded(shape, 4);
  for (auto* t : {&q, &k, &v}) t->requires_grad_();
  torch::Tensor ref = local_attention(q, k, v);
  (ref * w).sum().backward();

  auto mine = [&](const torch::Tensor& x) { return x.detach().chunk(n, 2)[r].clone().requires_grad_(); };
  torch::Tensor ql = mine(q), kl = mine(k), vl = mine(v);
  auto attend = context_parallel_attention(GetParam(), world(), local_attention);
  torch::Tensor out = attend(ql, kl, vl);
  EXPECT_TRUE(torch::allclose(out, ref.detach().chunk(n, 2)[r], 1e-10, 1e-10)) << GetParam() << " forward on rank " << r;
  (out * w.chunk(n, 2)[r]).sum().backward();
  const char* names[] = {"q", "k", "v"};
  const torch::Tensor* whole[] = {&q, &k, &v};
  const torch::Tensor* part[] = {&ql, &kl, &vl};
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(torch::allclose(part[i]->grad(), whole[i]->grad().chunk(n, 2)[r], 1e-10, 1e-10))
        << GetParam() << ": gradient of " << names[i] << " on rank " << r << ", max diff "
        << (part[i]->grad() - whole[i]->grad().chunk(n, 2)[r]).abs().max().item<double>();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CpAttention, ::testing::Values("allgather_kv", "ulysses", "ring"));

TEST(ContextParallel, RingShiftPassesForwardAndGradientsBack) {
  const int n = world().size(), r = world().rank();
  torch::Tensor x = torch::full({3}, static_cast<double>(r), torch::kFloat64).requires_grad_();
  torch::Tensor y = ring_shift(x, world());
  EXPECT_EQ(y[0].item<double>(), (r - 1 + n) % n);
  (y * (10.0 * r)).sum().backward();  // rank r's weight reaches the rank that sent to r
  EXPECT_EQ(x.grad()[0].item<double>(), 10.0 * ((r + 1) % n));
}

// The model on `dims` (cp, tp over the world) against one process.
void expect_model_matches(const ParallelDims& dims, const std::string& mode, bool sequence_parallel) {
  model::T2VModel ref = reel::testing::small_parallel_model();
  auto [ref_out, ref_grads] = reel::testing::run_small_model(ref);
  Mesh mesh(world(), dims);
  model::T2VModel m = reel::testing::small_parallel_model();
  Communicator& tp = mesh.group(MeshGroup::kTp);
  Communicator& cp = mesh.group(MeshGroup::kCp);
  const trainer::TensorParallelPlan plan = trainer::apply_tensor_parallel(*m, tp, sequence_parallel);
  trainer::apply_context_parallel(*m, cp, mode);
  auto [out, grads] = reel::testing::run_small_model(m);
  EXPECT_TRUE(torch::allclose(out, ref_out, 1e-5, 1e-6))
      << mode << ": max diff " << (out - ref_out).abs().max().item<double>();
  for (auto& [name, g] : grads) {
    auto cut = plan.find(name);
    torch::Tensor whole = cut == plan.end() ? g : trainer::tensor_parallel_gather(cut->second, g, tp);
    cp.all_reduce(whole, ReduceOp::kAvg);  // each cp rank counts its tokens cp times
    const torch::Tensor& expected = ref_grads.at(name);
    double rel = (whole - expected).norm().item<double>() / (expected.norm().item<double>() + 1e-12);
    EXPECT_LT(rel, 1e-5) << mode << ": " << name << " on rank " << world().rank();
  }
}

TEST_P(CpAttention, ModelMatchesOneProcess) {
  if (8 % world().size() != 0) GTEST_SKIP() << "8 tokens do not split over " << world().size() << " ranks";
  expect_model_matches(ParallelDims{1, 1, world().size(), 1}, GetParam(), false);
}

TEST_P(CpAttention, WithTensorAndSequenceParallelMatchesOneProcess) {
  if (world().size() != 4) GTEST_SKIP() << "cp 2 x tp 2 needs 4 ranks";
  expect_model_matches(ParallelDims{1, 1, 2, 2}, GetParam(), true);
}

}  // namespace
}  // namespace reel::parallel
