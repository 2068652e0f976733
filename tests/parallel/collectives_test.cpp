// The autograd collectives under mpirun: each forward against the tensor one process would build,
// and each backward against the gradient of the sum of every rank's loss, computed by hand.
// Every rank builds the same global tensors from one seed and takes its part.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "parallel/collectives.h"
#include "tests/parallel/mpi_test_env.h"
#include "tests/parallel/parallel_test_util.h"

namespace reel::parallel {
namespace {

using reel::testing::world;

using reel::testing::seeded;

int n() { return world().size(); }
int r() { return world().rank(); }

// Loss weights: rank k's loss is (y * weights(k)).sum().
torch::Tensor weights(std::vector<int64_t> shape, int k) { return seeded(shape, 1000 + k); }
torch::Tensor sum_of_weights(std::vector<int64_t> shape) {
  torch::Tensor s = torch::zeros(shape, torch::kFloat64);
  for (int k = 0; k < n(); ++k) s += weights(shape, k);
  return s;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(torch::allclose(a, b, 1e-12, 1e-12)) << what << " on rank " << r() << ": max diff "
                                                   << (a - b).abs().max().item<double>();
}

TEST(Collectives, CopyToGroupSumsGradients) {
  torch::Tensor x = seeded({3, 4}, 1).requires_grad_();
  torch::Tensor y = copy_to_group(x, world());
  expect_close(y, x.detach(), "forward");
  (y * weights({3, 4}, r())).sum().backward();
  expect_close(x.grad(), sum_of_weights({3, 4}), "gradient");
}

TEST(Collectives, ReduceFromGroupSumsForwardOnly) {
  torch::Tensor x = seeded({3, 4}, 10 + r()).requires_grad_();
  torch::Tensor y = reduce_from_group(x, world());
  torch::Tensor expected = torch::zeros({3, 4}, torch::kFloat64);
  for (int k = 0; k < n(); ++k) expected += seeded({3, 4}, 10 + k);
  expect_close(y, expected, "forward");
  torch::Tensor w = weights({3, 4}, 0);  // the same loss on every rank, as after a row-parallel layer
  (y * w).sum().backward();
  expect_close(x.grad(), w, "gradient");
}

TEST(Collectives, GatherAlongConcatenatesAndReduceScattersBack) {
  for (int64_t dim : {0, 1, -1}) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    std::vector<int64_t> global = {2, 3, 2};
    global[d] *= n();
    torch::Tensor whole = seeded(global, 20);
    torch::Tensor x = whole.chunk(n(), d)[r()].clone().requires_grad_();
    torch::Tensor y = gather_along(x, dim, world());
    expect_close(y, whole, "forward");
    (y * weights(global, r())).sum().backward();
    expect_close(x.grad(), sum_of_weights(global).chunk(n(), d)[r()], "gradient");
  }
}

// What follows the gather runs alike on every rank (one loss, the same on each): each rank's
// gradient is its own part of that loss's gradient, with no sum over the ranks.
TEST(Collectives, GatherWholeAlongConcatenatesAndSplitsBack) {
  for (int64_t dim : {0, 1}) {
    std::vector<int64_t> global = {2, 3, 2};
    global[dim] *= n();
    torch::Tensor whole = seeded(global, 25);
    torch::Tensor x = whole.chunk(n(), dim)[r()].clone().requires_grad_();
    torch::Tensor y = gather_whole_along(x, dim, world());
    expect_close(y, whole, "forward");
    (y * weights(global, 0)).sum().backward();
    expect_close(x.grad(), weights(global, 0).chunk(n(), dim)[r()], "gradient");
  }
}

TEST(Collectives, ReduceScatterAlongSumsKeepsOwnPartAndGathersBack) {
  for (int64_t dim : {0, 2}) {
    std::vector<int64_t> global = {2, 3, 2};
    global[dim] *= n();
    torch::Tensor x = seeded(global, 30 + r()).requires_grad_();
    torch::Tensor y = reduce_scatter_along(x, dim, world());
    torch::Tensor total = torch::zeros(global, torch::kFloat64);
    for (int k = 0; k < n(); ++k) total += seeded(global, 30 + k);
    expect_close(y, total.chunk(n(), dim)[r()], "forward");
    std::vector<int64_t> part = global;
    part[dim] /= n();
    (y * weights(part, r())).sum().backward();
    std::vector<torch::Tensor> parts;
    for (int k = 0; k < n(); ++k) parts.push_back(weights(part, k));
    expect_close(x.grad(), torch::cat(parts, dim), "gradient");
  }
}

TEST(Collectives, SplitAlongKeepsOwnPartAndGathersBack) {
  std::vector<int64_t> global = {2, 4 * n()};
  torch::Tensor x = seeded(global, 40).requires_grad_();
  torch::Tensor y = split_along(x, 1, world());
  expect_close(y, x.detach().chunk(n(), 1)[r()], "forward");
  (y * weights({2, 4}, r())).sum().backward();
  std::vector<torch::Tensor> parts;
  for (int k = 0; k < n(); ++k) parts.push_back(weights({2, 4}, k));
  expect_close(x.grad(), torch::cat(parts, 1), "gradient");
}

// Ulysses: (batch, sequence part, heads) -> (batch, whole sequence, heads part) and back.
TEST(Collectives, AllToAllSwapsTheSplitAxis) {
  const int64_t seq = 3 * n(), heads = 2 * n();
  torch::Tensor whole = seeded({2, seq, heads, 5}, 50);
  torch::Tensor x = whole.chunk(n(), 1)[r()].clone().requires_grad_();
  torch::Tensor y = all_to_all_along(x, /*scatter_dim=*/2, /*gather_dim=*/1, world());
  expect_close(y, whole.chunk(n(), 2)[r()], "forward");
  torch::Tensor w_whole = weights({2, seq, heads, 5}, 0);
  (y * w_whole.chunk(n(), 2)[r()]).sum().backward();
  expect_close(x.grad(), w_whole.chunk(n(), 1)[r()], "gradient");
  // And back: the inverse exchange restores the input.
  expect_close(all_to_all_along(y.detach(), 1, 2, world()), x.detach(), "round trip");
}

}  // namespace
}  // namespace reel::parallel
