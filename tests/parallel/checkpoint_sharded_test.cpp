// One checkpoint file written by every rank at once (parallel HDF5), each rank writing only its
// part of each tensor: FSDP-like flat spans, tensor-parallel slices (a fused column cut, a row
// cut), both composed, a tensor only one rank writes, a scalar, an empty tensor. Read back by one
// process, every tensor equals the whole one and its checksum verifies. Shares that leave a gap or
// overlap are refused on every rank, naming the tensor, and leave no file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/error.h"
#include "parallel/mpi_communicator.h"
#include "tests/parallel/mpi_test_env.h"
#include "tests/parallel/parallel_test_util.h"
#include "trainer/checkpoint_sharded.h"
#include "trainer/parallelize.h"

namespace reel::trainer {
namespace {

namespace fs = std::filesystem;
using reel::testing::world;

MPI_Comm world_comm() {
  auto* mpi = dynamic_cast<parallel::MpiCommunicator*>(&world());
  EXPECT_NE(mpi, nullptr);
  return mpi->comm();
}

// A directory every rank names alike (rank 0's pid), removed at the end.
class SharedDir {
 public:
  explicit SharedDir(const std::string& name) {
    int64_t pid = ::getpid();
    torch::Tensor t = torch::tensor({pid});
    world().broadcast(t, 0);
    path_ = fs::temp_directory_path() / ("reel_sharded_" + std::to_string(t.item<int64_t>()) + "_" + name);
    if (world().rank() == 0) fs::create_directories(path_);
    world().barrier();
  }
  ~SharedDir() {
    world().barrier();
    if (world().rank() == 0) fs::remove_all(path_);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    return out;
  }

 private:
  fs::path path_;
};

// Elements [r * n / size, (r + 1) * n / size) of n: uneven parts, some empty for small n.
std::pair<int64_t, int64_t> span_of(int64_t n, int r, int size) { return {r * n / size, (r + 1) * n / size}; }

// Rank r's share of `whole` when tp = `tp` ranks cut it by `cut` (column or row) and the ranks
// with the same tp slice split its elements FSDP-like: world rank r is (fsdp = r / tp, tp = r % tp).
TensorShare cut_and_spanned(const torch::Tensor& whole, const TensorParallelCut& cut, int tp) {
  const int r = world().rank(), fsdp_size = world().size() / tp, tp_rank = r % tp, fsdp_rank = r / tp;
  torch::Tensor local;
  if (cut.column) {
    std::vector<torch::Tensor> mine;
    for (const auto& block : whole.chunk(cut.groups, 0)) mine.push_back(block.chunk(tp, 0)[tp_rank]);
    local = torch::cat(mine, 0).contiguous();
  } else {
    local = whole.chunk(tp, 1)[tp_rank].contiguous();
  }
  TensorShare s;
  s.dtype = whole.scalar_type();
  s.local_shape = local.sizes().vec();
  s.index_map = tensor_parallel_index_map(cut, local.sizes(), tp_rank, tp, s.shape);
  EXPECT_EQ(s.shape, whole.sizes().vec());
  std::tie(s.begin, s.end) = span_of(local.numel(), fsdp_rank, fsdp_size);
  s.data = local.reshape({-1}).narrow(0, s.begin, s.end - s.begin).clone();
  return s;
}

std::map<std::string, torch::Tensor> whole_tensors() {
  const int64_t w = world().size();
  std::map<std::string, torch::Tensor> t;
  t["fsdp/flat"] = reel::testing::seeded({7, 5}, 1).to(torch::kFloat);
  t["tp/qkv"] = reel::testing::seeded({3 * 2 * w, 4}, 2).to(torch::kFloat);     // fused: 3 blocks
  t["tp/bias"] = reel::testing::seeded({3 * 2 * w}, 3).to(torch::kFloat);        // a cut 1-D tensor
  t["tp/out"] = reel::testing::seeded({5, 3 * w}, 4).to(torch::kDouble);         // row cut
  t["tp_fsdp/w13"] = reel::testing::seeded({2 * 4, 6}, 5).to(torch::kFloat);     // tp 2 x fsdp
  t["tp_fsdp/w2"] = reel::testing::seeded({3, 2 * 5}, 6).to(torch::kFloat);
  t["one/bf16"] = reel::testing::seeded({9}, 7).to(torch::kBFloat16);
  t["one/step"] = torch::scalar_tensor(42, torch::kLong);
  t["one/empty"] = torch::zeros({0, 3});
  return t;
}

ShardedCheckpoint shares_of(const std::map<std::string, torch::Tensor>& whole) {
  const int r = world().rank(), size = world().size(), tp = size >= 2 ? 2 : 1;
  ShardedCheckpoint ckpt;
  ckpt.step = 7;
  ckpt.meta["recipe"] = "model:\n  dim: 8\n";
  ckpt.meta["mesh"] = world().rank() == 0 ? "rank 0's meta is written" : "not this";
  TensorShare flat = whole_share(whole.at("fsdp/flat"), true);
  std::tie(flat.begin, flat.end) = span_of(flat.local_shape[0] * flat.local_shape[1], r, size);
  flat.data = whole.at("fsdp/flat").reshape({-1}).narrow(0, flat.begin, flat.end - flat.begin);
  ckpt.tensors["fsdp/flat"] = flat;
  ckpt.tensors["tp/qkv"] = cut_and_spanned(whole.at("tp/qkv"), {true, 3}, size);
  ckpt.tensors["tp/bias"] = cut_and_spanned(whole.at("tp/bias"), {true, 1}, size);
  ckpt.tensors["tp/out"] = cut_and_spanned(whole.at("tp/out"), {false, 1}, size);
  ckpt.tensors["tp_fsdp/w13"] = cut_and_spanned(whole.at("tp_fsdp/w13"), {true, 2}, tp);
  ckpt.tensors["tp_fsdp/w2"] = cut_and_spanned(whole.at("tp_fsdp/w2"), {false, 1}, tp);
  ckpt.tensors["one/bf16"] = whole_share(whole.at("one/bf16"), r == 0);
  ckpt.tensors["one/step"] = whole_share(whole.at("one/step"), r == size - 1);
  ckpt.tensors["one/empty"] = whole_share(whole.at("one/empty"), r == 0);
  return ckpt;
}

TEST(CheckpointSharded, EveryRankWritesItsPartAndTheFileHoldsTheWholeTensors) {
  SharedDir dir("parts");
  const auto whole = whole_tensors();
  const std::string path = dir.file("step_7.h5");
  save_checkpoint_sharded(path, shares_of(whole), world_comm());
  ASSERT_TRUE(fs::exists(path));  // every rank returns after the rename

  Checkpoint back = load_checkpoint(path);  // verifies every checksum
  EXPECT_EQ(back.step, 7);
  ASSERT_EQ(back.tensors.size(), whole.size());
  for (const auto& [name, t] : whole) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    EXPECT_EQ(back.tensors.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back.tensors.at(name), t)) << name << " differs from the whole tensor";
  }
  EXPECT_EQ(back.meta.at("mesh"), "rank 0's meta is written");
  EXPECT_EQ(back.meta.at("recipe"), "model:\n  dim: 8\n");

  // The same file as one process writes, checksums included.
  if (world().rank() == 0) {
    Checkpoint one;
    one.step = 7;
    one.tensors = whole;
    save_checkpoint(dir.file("one.h5"), one);
    const CheckpointInfo a = inspect_checkpoint(path), b = inspect_checkpoint(dir.file("one.h5"));
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (size_t i = 0; i < a.tensors.size(); ++i) {
      EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
      EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
      EXPECT_EQ(a.tensors[i].dtype, b.tensors[i].dtype);
    }
  }
}

TEST(CheckpointSharded, AGapOrAnOverlapIsRefusedOnEveryRankAndLeavesNoFile) {
  SharedDir dir("bad");
  const auto whole = whole_tensors();
  const int r = world().rank(), size = world().size();
  ShardedCheckpoint gap = shares_of(whole);
  if (r == size - 1) {  // the last rank forgets its last element of fsdp/flat
    TensorShare& s = gap.tensors.at("fsdp/flat");
    s.end -= 1;
    s.data = s.data.narrow(0, 0, s.data.numel() - 1);
  }
  try {
    save_checkpoint_sharded(dir.file("gap.h5"), gap, world_comm());
    ADD_FAILURE() << "a gap was written";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'fsdp/flat' has no rank writing bytes [136, 140)"), std::string::npos)
        << e.what();
  }
  if (size > 1) {
    ShardedCheckpoint overlap = shares_of(whole);
    overlap.tensors["one/bf16"] = whole_share(whole.at("one/bf16"), true);  // every rank claims it
    try {
      save_checkpoint_sharded(dir.file("overlap.h5"), overlap, world_comm());
      ADD_FAILURE() << "an overlap was written";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("'one/bf16' has bytes [0, 18) written by both rank 0 and rank 1"),
                std::string::npos)
          << e.what();
    }
  }
  world().barrier();
  EXPECT_TRUE(dir.entries().empty()) << "left behind: " << dir.entries().front();
}

TEST(CheckpointSharded, RanksThatDisagreeOnTheTensorsWriteNothing) {
  if (world().size() == 1) GTEST_SKIP() << "needs two ranks";
  SharedDir dir("disagree");
  ShardedCheckpoint ckpt = shares_of(whole_tensors());
  if (world().rank() == 1) ckpt.tensors.erase("one/empty");
  EXPECT_THROW(save_checkpoint_sharded(dir.file("x.h5"), ckpt, world_comm()), UserError);
  world().barrier();
  EXPECT_TRUE(dir.entries().empty());
}

}  // namespace
}  // namespace reel::trainer
