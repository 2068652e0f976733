// Checkpoint files: CRC-64, bit-exact round trips, refusal of damaged or foreign files, failed writes.
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_sharded.h"

#include <gtest/gtest.h>

#include "common/runtime.h"
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "common/error.h"
#include "common/fs.h"
#include "tests/test_util.h"
#include "tests/trainer/checkpoint_test_util.h"

namespace fs = std::filesystem;
using namespace reel::trainer;
using reel::testing::contains;
using reel::testing::user_error_message;
using reel::testing::expect_user_error;
using reel::testing::files_in;
using reel::testing::same_bytes;
using reel::testing::ScratchDir;
using reel::testing::small_checkpoint;

namespace {

// Bit-at-a-time CRC-64/XZ, independent of the table-driven implementation.
uint64_t reference_crc64(const unsigned char* p, size_t n) {
  uint64_t crc = ~uint64_t{0};
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xC96C5795D7870F42ULL : crc >> 1;
  }
  return ~crc;
}

// The file offset of a contiguous dataset's data.
uint64_t data_offset(const std::string& path, const std::string& dataset) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  haddr_t offset = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  EXPECT_NE(offset, HADDR_UNDEF);
  return offset;
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
  ASSERT_TRUE(f.good());
}

// Replaces the root group's `format` attribute (or only deletes it, when value is empty).
void set_format(const std::string& path, const std::string& value) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  if (H5Aexists(f, "format") > 0) H5Adelete(f, "format");
  if (!value.empty()) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size());
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, value.data());
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
  }
  H5Fclose(f);
}


}  // namespace

// ---------------------------------------------------------------------------------------------

TEST(Crc64, MatchesCheckValueReferenceAndCombines) {
  const std::string check = "123456789";
  EXPECT_EQ(crc64(check.data(), check.size()), 0x995DC9BBDF1939FAULL);
  EXPECT_EQ(crc64(nullptr, 0), 0u);

  // Larger than several parallel chunks, not a multiple of the chunk size.
  torch::Tensor bytes = torch::randint(0, 256, {(9 << 20) + 3}, torch::kUInt8);
  const auto* p = bytes.data_ptr<uint8_t>();
  const size_t n = bytes.numel();
  const int threads = at::get_num_threads();
  at::set_num_threads(4);  // the parallel path even under OMP_NUM_THREADS=1
  const uint64_t whole = crc64(p, n);
  at::set_num_threads(threads);
  EXPECT_EQ(whole, reference_crc64(p, n));
  EXPECT_EQ(crc64(p, n), whole);

  const size_t cut = 1234567;
  EXPECT_EQ(crc64(p + cut, n - cut, crc64(p, cut)), whole);  // chaining
  EXPECT_EQ(crc64_combine(crc64(p, cut), crc64(p + cut, n - cut), n - cut), whole);
}

// Where a share's elements lie in the whole tensor (the runs each rank checksums and writes).
TEST(ShareRuns, FollowSlicesAndSpansInTheWholeTensor) {
  auto runs = [](const TensorShare& s) {
    std::vector<std::array<int64_t, 3>> out;
    for (const ShareRun& r : share_runs("t", s)) out.push_back({r.whole, r.local, r.length});
    return out;
  };
  using Runs = std::vector<std::array<int64_t, 3>>;
  // A whole 4x6 tensor, elements [5, 17): one run.
  TensorShare whole = whole_share(torch::zeros({4, 6}), true);
  whole.begin = 5;
  whole.end = 17;
  EXPECT_EQ(runs(whole), (Runs{{5, 0, 12}}));
  // Rank 1 of 2 of a row cut (columns 3..5 of 4x6): a run per row.
  TensorShare row;
  row.shape = {4, 6};
  row.local_shape = {4, 3};
  row.index_map = {{{0, 0, 4}}, {{0, 3, 3}}};
  row.end = 12;
  EXPECT_EQ(runs(row), (Runs{{3, 0, 3}, {9, 3, 3}, {15, 6, 3}, {21, 9, 3}}));
  // ... of which only its elements [4, 8) (an FSDP span): parts of rows 1 and 2.
  row.begin = 4;
  row.end = 8;
  EXPECT_EQ(runs(row), (Runs{{10, 0, 2}, {15, 2, 2}}));
  // Rank 1 of 2 of a fused column cut, 3 blocks of 4 rows, 2 columns: one run per block.
  TensorShare col;
  col.shape = {12, 2};
  col.local_shape = {6, 2};
  col.index_map = {{{0, 2, 2}, {2, 6, 2}, {4, 10, 2}}, {{0, 0, 2}}};
  col.end = 12;
  EXPECT_EQ(runs(col), (Runs{{4, 0, 4}, {12, 4, 4}, {20, 8, 4}}));
  // A 0-dim tensor, and a share with nothing to write.
  EXPECT_EQ(runs(whole_share(torch::scalar_tensor(3), true)), (Runs{{0, 0, 1}}));
  EXPECT_TRUE(runs(whole_share(torch::zeros({4, 6}), false)).empty());
  // Inconsistent shares name the tensor.
  col.end = 13;
  expect_user_error([&] { share_runs("model/x", col); }, "'model/x' (12,2): this rank's share is inconsistent: "
                    "elements [0, 13) of a local tensor of 12");
  col.end = 12;
  col.index_map[0][1].whole = 1;  // out of order
  expect_user_error([&] { share_runs("model/x", col); }, "dimension 0: segment {local 2, whole 1, length 2} is out of order");
}

TEST(Checkpoint, RoundTripsEveryDtypeBitExactly) {
  ScratchDir scratch("dtypes");
  const fs::path dir = scratch.path();
  Checkpoint c;
  c.step = 123456789012;
  torch::Tensor f32 = torch::randn({3, 5});
  f32[0][0] = -0.0f;
  f32[0][1] = std::numeric_limits<float>::infinity();
  f32[0][2] = std::numeric_limits<float>::denorm_min();
  uint32_t nan_bits = 0x7fc01234;  // a NaN with a payload
  std::memcpy(f32.data_ptr<float>() + 3, &nan_bits, 4);
  c.tensors["model/blocks.0.attn.qkv.weight"] = f32;
  c.tensors["model/blocks.0.attn.qkv.bias"] = torch::randn({5}, torch::kDouble);
  c.tensors["ema/deep/er/still/leaf.with.dots"] = torch::randn({2, 3, 4}).to(torch::kHalf);
  // Every bf16 bit pattern kind (NaNs, infinities, subnormals) from random 16-bit words.
  c.tensors["model/bf16"] = torch::randint(-32768, 32768, {4, 64}, torch::kShort).view(torch::kBFloat16);
  c.tensors["optim/int64"] = torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                                            std::numeric_limits<int64_t>::max()});
  c.tensors["optim/int32"] = torch::randint(-1000000, 1000000, {7}, torch::kInt);
  c.tensors["optim/int16"] = torch::randint(-30000, 30000, {7}, torch::kShort);
  c.tensors["optim/int8"] = torch::randint(-128, 128, {7}, torch::kChar);
  c.tensors["rng/torch_cpu"] = torch::randint(0, 256, {5056}, torch::kUInt8);
  c.tensors["mask"] = torch::rand({3, 3}) > 0.5;
  c.tensors["scalar.f32"] = torch::scalar_tensor(3.5);
  c.tensors["scalar.i64"] = torch::scalar_tensor(42, torch::kLong);
  c.tensors["empty/f32"] = torch::empty({0, 3});
  c.tensors["empty/bool"] = torch::empty({0}, torch::kBool);
  c.tensors["empty/bf16"] = torch::empty({2, 0, 4}, torch::kBFloat16);
  c.tensors["strided.transposed"] = torch::randn({3, 4}).t();  // stored contiguous, same values

  const std::string path = (dir / "c.h5").string();
  save_checkpoint(path, c);
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"c.h5"});  // no temporary left behind

  Checkpoint r = load_checkpoint(path);
  EXPECT_EQ(r.step, c.step);
  EXPECT_EQ(r.source, path);
  ASSERT_EQ(r.tensors.size(), c.tensors.size());
  for (const auto& [name, t] : c.tensors) {
    ASSERT_EQ(r.tensors.count(name), 1u) << name;
    EXPECT_TRUE(same_bytes(r.tensors.at(name), t)) << name;
    EXPECT_TRUE(r.tensors.at(name).is_contiguous()) << name;
  }
}

TEST(Checkpoint, MetaStringsRoundTrip) {
  ScratchDir scratch("meta");
  const fs::path dir = scratch.path();
  Checkpoint c;
  std::string recipe;
  for (int i = 0; recipe.size() < 200 * 1024; ++i) recipe += "key_" + std::to_string(i) + ": value # comment\n";
  c.meta["recipe"] = recipe;
  c.meta["data_position"] = R"({"epoch":3,"batch":17})";
  c.meta["empty"] = "";
  c.meta["binary"] = std::string("a\0b\xff\x00", 5);
  c.meta["utf8"] = "caf\xc3\xa9 \xf0\x9f\x8e\xac";
  c.meta["nested/key.with.dots"] = "x";
  const std::string path = (dir / "m.h5").string();
  save_checkpoint(path, c);
  EXPECT_EQ(load_checkpoint(path).meta, c.meta);
  EXPECT_EQ(inspect_checkpoint(path).meta, c.meta);
}

TEST(Checkpoint, InspectListsNamesShapesDtypesAndHeader) {
  ScratchDir scratch("inspect");
  const fs::path dir = scratch.path();
  Checkpoint c = small_checkpoint(7);
  c.tensors["ema/s"] = torch::scalar_tensor(1, torch::kBFloat16);
  const std::string path = (dir / "i.h5").string();
  save_checkpoint(path, c);
  CheckpointInfo info = inspect_checkpoint(path);
  EXPECT_EQ(info.step, 7);
  EXPECT_EQ(info.version, reel::version());
  EXPECT_EQ(info.commit, reel::git_commit());
  ASSERT_EQ(info.created.size(), 20u);  // 2024-05-01T12:34:56Z
  EXPECT_EQ(info.created.back(), 'Z');
  EXPECT_EQ(info.meta, c.meta);
  ASSERT_EQ(info.tensors.size(), 3u);
  EXPECT_EQ(info.tensors[0].name, "ema/s");
  EXPECT_EQ(info.tensors[0].dtype, "bfloat16");
  EXPECT_TRUE(info.tensors[0].shape.empty());
  EXPECT_EQ(info.tensors[1].name, "model/blocks.0.b");
  EXPECT_EQ(info.tensors[2].name, "model/blocks.0.w");
  EXPECT_EQ(info.tensors[2].shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(info.tensors[2].dtype, "float32");
}

TEST(Checkpoint, MissingFileNamesThePath) {
  ScratchDir scratch("missing");
  const std::string path = (scratch.path() / "nope.h5").string();
  std::string msg = user_error_message([&] { load_checkpoint(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "does not exist")) << msg;
  EXPECT_TRUE(contains(user_error_message([&] { inspect_checkpoint(path); }), path));
}

TEST(Checkpoint, TruncatedOrNonHdf5FileIsRefused) {
  ScratchDir scratch("truncated");
  const fs::path dir = scratch.path();
  Checkpoint c = small_checkpoint(1);
  c.tensors["model/big"] = torch::randn({256, 256});
  const std::string good = (dir / "good.h5").string();
  save_checkpoint(good, c);

  const std::string cut = (dir / "cut.h5").string();
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(good) / 2);
  const std::string text = (dir / "text.h5").string();
  std::ofstream(text) << "not an HDF5 file at all\n";
  const std::string zero = (dir / "zero.h5").string();
  std::ofstream(zero).close();

  for (const std::string& path : {cut, text, zero}) {
    for (auto read : {std::function<void()>([&] { load_checkpoint(path); }),
                      std::function<void()>([&] { inspect_checkpoint(path); })}) {
      std::string msg = user_error_message(read);
      EXPECT_TRUE(contains(msg, "truncated or corrupt")) << msg;
      EXPECT_TRUE(contains(msg, path)) << msg;
      EXPECT_TRUE(contains(msg, "use an earlier checkpoint")) << msg;
    }
  }
}

TEST(Checkpoint, FlippedDataByteFailsTheChecksumOfThatTensor) {
  ScratchDir scratch("flip");
  const fs::path dir = scratch.path();
  const std::string path = (dir / "f.h5").string();
  save_checkpoint(path, small_checkpoint(5));
  flip_byte(path, data_offset(path, "model/blocks.0.w") + 37);
  std::string msg = user_error_message([&] { load_checkpoint(path); });
  EXPECT_TRUE(contains(msg, "'model/blocks.0.w' fails its checksum")) << msg;
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_EQ(inspect_checkpoint(path).step, 5);  // headers intact; inspect does not read data

  save_checkpoint(path, small_checkpoint(5));
  flip_byte(path, data_offset(path, "meta/recipe") + 3);
  msg = user_error_message([&] { load_checkpoint(path); });
  EXPECT_TRUE(contains(msg, "meta 'recipe' fails its checksum")) << msg;
}

TEST(Checkpoint, ForeignHdf5FileOrOtherFormatIsRefused) {
  ScratchDir scratch("foreign");
  const fs::path dir = scratch.path();
  const std::string path = (dir / "x.h5").string();
  save_checkpoint(path, small_checkpoint(1));
  set_format(path, "");
  std::string msg = user_error_message([&] { load_checkpoint(path); });
  EXPECT_TRUE(contains(msg, "not a Reel checkpoint")) << msg;
  EXPECT_TRUE(contains(msg, path)) << msg;

  set_format(path, "reel-ckpt-9");
  msg = user_error_message([&] { inspect_checkpoint(path); });
  EXPECT_TRUE(contains(msg, "'reel-ckpt-9'")) << msg;
  EXPECT_TRUE(contains(msg, "'reel-ckpt-1'")) << msg;
  EXPECT_TRUE(contains(msg, path)) << msg;
}

TEST(Checkpoint, UnwritableDirectoryLeavesNoFile) {
  ScratchDir scratch("readonly");
  const fs::path dir = scratch.path();
  // root may write into a 0555 directory; nobody may create files in /proc.
  fs::path target = ::geteuid() == 0 ? fs::path("/proc") : dir;
  if (target == dir) fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string path = (target / ("reel_ckpt_test_" + std::to_string(::getpid()) + ".h5")).string();
  std::string msg = user_error_message([&] { save_checkpoint(path, small_checkpoint(1)); });
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_FALSE(fs::exists(path));
}

TEST(Checkpoint, FailedWriteRemovesItsTemporaryFile) {
  ScratchDir scratch("failed_write");
  const fs::path dir = scratch.path();
  Checkpoint c = small_checkpoint(1);
  c.tensors["model/z.complex"] = torch::randn({2}, torch::kComplexFloat);  // checked after the file is created
  const std::string path = (dir / "c.h5").string();
  std::string msg = user_error_message([&] { save_checkpoint(path, c); });
  EXPECT_TRUE(contains(msg, "model/z.complex")) << msg;
  EXPECT_TRUE(files_in(dir).empty());
}

TEST(Checkpoint, RefusesNamesThatAreNotPaths) {
  ScratchDir scratch("names");
  const fs::path dir = scratch.path();
  const std::string path = (dir / "n.h5").string();
  for (const std::string bad : {"a//b", "/abs", "trailing/", "a/./b", "a/../b", "", "meta/x", "meta"}) {
    Checkpoint c;
    c.tensors[bad] = torch::zeros({1});
    std::string msg = user_error_message([&] { save_checkpoint(path, c); });
    EXPECT_TRUE(contains(msg, "'" + bad + "'")) << msg;
  }
  Checkpoint c;
  c.tensors["model/a"] = torch::zeros({1});
  c.tensors["model/a/b"] = torch::zeros({1});
  EXPECT_TRUE(contains(user_error_message([&] { save_checkpoint(path, c); }), "conflict"));
  Checkpoint m;
  m.meta["x//y"] = "v";
  EXPECT_TRUE(contains(user_error_message([&] { save_checkpoint(path, m); }), "'x//y'"));
  EXPECT_TRUE(files_in(dir).empty());
}
