// The MPI communicator under mpirun (1, 2 and 4 ranks): every operation against the values it
// must produce on every rank, every dtype, fp32 accumulation of bf16 reductions, sub-groups.
#include <gtest/gtest.h>

#include <cmath>

#include "parallel/communicator.h"
#include "tests/parallel/mpi_test_env.h"

namespace reel::parallel {
namespace {

using reel::testing::world;

const std::vector<torch::ScalarType> kNumericTypes = {torch::kFloat, torch::kDouble, torch::kBFloat16, torch::kHalf,
                                                      torch::kByte,  torch::kChar,   torch::kShort,    torch::kInt,
                                                      torch::kLong};

TEST(MpiCommunicator, AllReduceSumsEveryDtype) {
  Communicator& w = world();
  const int n = w.size(), r = w.rank();
  for (auto dtype : kNumericTypes) {
    auto t = torch::arange(6, torch::kFloat).add(r + 1).to(dtype);  // rank r holds i + r + 1
    w.all_reduce(t, ReduceOp::kSum);
    auto expected = torch::arange(6, torch::kFloat).mul(n).add(n * (n + 1) / 2.0).to(dtype);
    EXPECT_TRUE(torch::equal(t, expected)) << dtype << ": " << t << " expected " << expected;
  }
}

TEST(MpiCommunicator, AllReduceMaxMinAvg) {
  Communicator& w = world();
  const int n = w.size(), r = w.rank();
  auto base = torch::tensor({-3.0, 0.5, 7.0, 2.25}, torch::kFloat);
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kDouble}) {
    auto mx = (base + r).to(dtype), mn = (base + r).to(dtype), avg = (base + r).to(dtype);
    w.all_reduce(mx, ReduceOp::kMax);
    w.all_reduce(mn, ReduceOp::kMin);
    w.all_reduce(avg, ReduceOp::kAvg);
    EXPECT_TRUE(torch::equal(mx, (base + (n - 1)).to(dtype))) << dtype << " max " << mx;
    EXPECT_TRUE(torch::equal(mn, base.to(dtype))) << dtype << " min " << mn;
    EXPECT_TRUE(torch::allclose(avg.to(torch::kFloat), base + (n - 1) / 2.0)) << dtype << " avg " << avg;
  }
  auto flags = torch::tensor({r == 0, true, false});
  auto any = flags.clone(), all = flags.clone();
  w.all_reduce(any, ReduceOp::kMax);
  w.all_reduce(all, ReduceOp::kMin);
  EXPECT_TRUE(torch::equal(any, torch::tensor({true, true, false})));
  EXPECT_TRUE(torch::equal(all, torch::tensor({n == 1, true, false})));
}

// Rank 0 adds 1, every other rank 3 * 2^-10. bf16 has a step of 2^-7 at 1, so adding the small
// terms one at a time in bf16 rounds each away (the sum stays 1); in fp32 they add up to
// 1 + 3(n-1) * 2^-10, which rounds to 1 + 2^-7 for n = 4.
TEST(MpiCommunicator, Bf16ReductionsAccumulateInFp32) {
  Communicator& w = world();
  const int n = w.size();
  const float small = 3.0f / 1024;
  auto t = torch::tensor({w.rank() == 0 ? 1.0f : small}).to(torch::kBFloat16);
  auto rs_in = torch::full({n}, w.rank() == 0 ? 1.0f : small).to(torch::kBFloat16);
  auto rs_out = torch::empty({1}, torch::kBFloat16);
  w.all_reduce(t, ReduceOp::kSum);
  w.reduce_scatter(rs_out, rs_in, ReduceOp::kSum);
  const float fp32_sum = 1.0f + small * (n - 1);
  auto expected = torch::tensor({fp32_sum}).to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(t, expected)) << t << " expected " << expected;
  EXPECT_TRUE(torch::equal(rs_out, expected)) << rs_out << " expected " << expected;
  if (n == 4) EXPECT_EQ(t.item<float>(), 1.0f + 1.0f / 128);
}

TEST(MpiCommunicator, AllGatherInRankOrder) {
  Communicator& w = world();
  const int n = w.size();
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kLong, torch::kBool}) {
    auto value = [&](int rank) {  // what rank `rank` contributes: (2, 3), distinct per rank
      auto v = torch::arange(6, torch::kFloat).view({2, 3}).add(rank);
      return dtype == torch::kBool ? v.remainder(2).eq(0) : v.to(dtype);
    };
    auto out = torch::empty({n, 2, 3}, dtype);
    w.all_gather(out, value(w.rank()));
    for (int i = 0; i < n; ++i) EXPECT_TRUE(torch::equal(out[i], value(i))) << dtype << " chunk " << i << ": " << out[i];
  }
}

TEST(MpiCommunicator, ReduceScatterGivesEachRankItsChunkOfTheSum) {
  Communicator& w = world();
  const int n = w.size(), r = w.rank();
  auto in = torch::arange(3 * n, torch::kFloat).mul(r + 1);  // rank r: (r + 1) * i
  auto out = torch::empty({3}, torch::kFloat);
  w.reduce_scatter(out, in, ReduceOp::kSum);
  auto expected = torch::arange(3 * r, 3 * r + 3, torch::kFloat).mul(n * (n + 1) / 2.0);
  EXPECT_TRUE(torch::equal(out, expected)) << out << " expected " << expected;
  auto avg = torch::empty({3}, torch::kDouble);
  w.reduce_scatter(avg, in.to(torch::kDouble), ReduceOp::kAvg);
  EXPECT_TRUE(torch::allclose(avg, expected.to(torch::kDouble) / n));
}

TEST(MpiCommunicator, AllToAllTransposesChunks) {
  Communicator& w = world();
  const int n = w.size(), r = w.rank();
  auto in = torch::empty({n, 2}, torch::kInt);
  for (int j = 0; j < n; ++j) in[j].fill_(100 * r + j);  // chunk j goes to rank j
  auto out = torch::empty_like(in);
  w.all_to_all(out, in);
  for (int i = 0; i < n; ++i) EXPECT_EQ(out[i][0].item<int>(), 100 * i + r) << "chunk from rank " << i;
}

TEST(MpiCommunicator, BroadcastFromTheLastRank) {
  Communicator& w = world();
  const int root = w.size() - 1;
  auto t = w.rank() == root ? torch::tensor({1.5, -2.0, 4.0}).to(torch::kBFloat16) : torch::zeros({3}, torch::kBFloat16);
  w.broadcast(t, root);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.5, -2.0, 4.0}).to(torch::kBFloat16))) << t;
}

TEST(MpiCommunicator, SendRecvAroundTheRing) {
  Communicator& w = world();
  const int n = w.size(), r = w.rank();
  auto out = torch::full({4}, double(r));
  auto in = torch::full({4}, -1.0);
  auto recv = w.recv_async(in, (r + n - 1) % n, /*tag=*/7);
  auto send = w.send_async(out, (r + 1) % n, /*tag=*/7);
  send->wait();
  recv->wait();
  EXPECT_TRUE(torch::equal(in, torch::full({4}, double((r + n - 1) % n)))) << in;
}

TEST(MpiCommunicator, AsyncOperationsOverlapAndCompleteInAnyWaitOrder) {
  Communicator& w = world();
  const int n = w.size();
  auto a = torch::ones({1 << 16});
  auto b = torch::full({8}, 2.0f);
  auto wa = w.all_reduce_async(a, ReduceOp::kSum);
  auto wb = w.all_reduce_async(b, ReduceOp::kSum);
  auto busy = torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // compute while they run
  wb->wait();
  wa->wait();
  EXPECT_TRUE(wa->completed() && wb->completed());
  EXPECT_EQ(busy[0][0].item<float>(), 64.0f);
  EXPECT_TRUE(torch::equal(a, torch::full({1 << 16}, float(n))));
  EXPECT_TRUE(torch::equal(b, torch::full({8}, 2.0f * n)));
  w.barrier();
}

TEST(MpiCommunicator, SplitFormsSubGroupsOrderedByKey) {
  Communicator& w = world();
  const int n = w.size(), r = w.rank();
  // Two groups (even and odd world ranks), each ordered backwards by key.
  auto half = w.split(r % 2, /*key=*/-r, "parity");
  std::vector<int> members;
  for (int i = n - 1; i >= 0; --i)
    if (i % 2 == r % 2) members.push_back(i);
  EXPECT_EQ(half->name(), "parity");
  EXPECT_EQ(half->size(), int(members.size()));
  EXPECT_EQ(half->world_ranks(), members);
  EXPECT_EQ(half->world_ranks()[half->rank()], r);
  auto t = torch::tensor({double(r)});
  half->all_reduce(t, ReduceOp::kSum);
  double sum = 0;
  for (int m : members) sum += m;
  EXPECT_EQ(t.item<double>(), sum);
  // A group of a group: splitting again works and is independent of the parent's operations.
  auto single = half->split(half->rank(), 0, "self");
  EXPECT_EQ(single->size(), 1);
  auto u = torch::tensor({5.0});
  single->all_reduce(u, ReduceOp::kSum);
  EXPECT_EQ(u.item<double>(), 5.0);
}

}  // namespace
}  // namespace reel::parallel

namespace reel::parallel {
namespace {

// Reductions over 8 MiB run as several MPI operations (a column slice of every rank's block for
// reduce_scatter): the result must not show the seams.
TEST(MpiCommunicator, LargeReductionsAreSegmentedAndExact) {
  Communicator& w = reel::testing::world();
  const int n = w.size(), r = w.rank();
  const int64_t m = (3 << 20) + 7;  // 12 MiB of fp32, not a multiple of the segment
  auto pattern = torch::arange(m, torch::kLong).remainder(50);
  auto t = (pattern + r).to(torch::kFloat);
  w.all_reduce(t, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(t, (pattern * n + n * (n - 1) / 2).to(torch::kFloat)));

  auto b = (pattern + r).to(torch::kBFloat16);  // staged through 24 MiB of fp32
  w.all_reduce(b, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(b, (pattern * n + n * (n - 1) / 2).to(torch::kBFloat16)));

  // Rank q's block j holds (pattern + 1000 j) * (q + 1): rank j receives (pattern + 1000 j) * n(n+1)/2.
  auto in = torch::empty({n, m}, torch::kFloat);
  for (int j = 0; j < n; ++j) in[j].copy_((pattern + 1000 * j) * (r + 1));
  auto out = torch::empty({m}, torch::kFloat);
  w.reduce_scatter(out, in, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(out, ((pattern + 1000 * r) * (n * (n + 1) / 2)).to(torch::kFloat)));
}

}  // namespace
}  // namespace reel::parallel
