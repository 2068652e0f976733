// Checkpoints: bit-exact round trips, refusal of damaged or foreign files, module/AdamW state, run dirs.
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_sharded.h"
#include "trainer/init_from.h"

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

namespace fs = std::filesystem;
using namespace reel::trainer;
using reel::testing::contains;
using reel::testing::user_error_message;
using reel::testing::expect_user_error;

namespace {

// An empty scratch directory private to this process, removed with everything in it at scope exit.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(fs::temp_directory_path() / ("reel_ckpt_test_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, ec);
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Same dtype, shape and bytes (NaN payloads and -0.0 included).
::testing::AssertionResult same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type()) {
    return ::testing::AssertionFailure() << "dtype " << a.scalar_type() << " vs " << b.scalar_type();
  }
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  torch::Tensor ca = a.cpu().contiguous(), cb = b.cpu().contiguous();
  if (ca.nbytes() > 0 && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "bytes differ";
  }
  return ::testing::AssertionSuccess();
}


std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

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

Checkpoint small_checkpoint(int64_t step) {
  Checkpoint c;
  c.step = step;
  c.tensors["model/blocks.0.w"] = torch::arange(64, torch::kFloat).reshape({8, 8}) * static_cast<double>(step);
  c.tensors["model/blocks.0.b"] = torch::full({8}, static_cast<double>(step), torch::kFloat);
  c.meta["recipe"] = "model:\n  name: tiny\nstep: " + std::to_string(step) + "\n";
  return c;
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

// ---------------------------------------------------------------------------------------------

namespace {
torch::nn::Sequential make_net(uint64_t seed, int64_t hidden = 3) {
  torch::manual_seed(seed);
  return torch::nn::Sequential(torch::nn::Linear(4, hidden),
                               torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
}
}  // namespace

TEST(ModuleState, RoundTripsThroughAFileExactly) {
  ScratchDir scratch("module");
  const fs::path dir = scratch.path();
  auto a = make_net(1);
  auto b = make_net(2);
  Checkpoint c;
  add_module_state(*a, "model/", c);
  EXPECT_EQ(c.tensors.size(), 4u);  // 0.weight 0.bias 1.weight 1.bias
  EXPECT_NE(c.tensors.at("model/0.weight").data_ptr(), a->named_parameters()["0.weight"].data_ptr());
  const std::string path = (dir / "m.h5").string();
  save_checkpoint(path, c);
  torch::Tensor b_weight = b->named_parameters()["0.weight"];
  load_module_state(*b, load_checkpoint(path), "model/");
  for (const auto& p : a->named_parameters()) {
    EXPECT_TRUE(same_bytes(b->named_parameters()[p.key()], p.value())) << p.key();
  }
  EXPECT_TRUE(b->named_parameters()["0.weight"].is_same(b_weight));  // copied in place
}

TEST(ModuleState, IncludesBuffers) {
  torch::manual_seed(3);
  torch::nn::Sequential a(torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3));
  a->train();
  a->forward(torch::randn({8, 4}));  // moves running statistics
  torch::nn::Sequential b(torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3));
  Checkpoint c;
  add_module_state(*a, "model/", c);
  ASSERT_EQ(c.tensors.count("model/1.running_mean"), 1u);
  ASSERT_EQ(c.tensors.count("model/1.num_batches_tracked"), 1u);
  load_module_state(*b, c, "model/");
  for (const auto& t : a->named_buffers()) EXPECT_TRUE(same_bytes(b->named_buffers()[t.key()], t.value())) << t.key();
}

TEST(ModuleState, ListsMissingUnexpectedAndShapeMismatchesAndChangesNothing) {
  auto a = make_net(1, 5);
  auto b = make_net(2, 3);
  Checkpoint c;
  c.source = "/runs/x/step_00000010.h5";
  add_module_state(*a, "model/", c);
  c.tensors.erase("model/1.bias");
  c.tensors["model/2.weight"] = torch::zeros({2});
  c.tensors["ema/0.weight"] = torch::zeros({1});  // other prefixes are not this call's business
  torch::Tensor before = b->named_parameters()["0.bias"].clone();
  std::string msg = user_error_message([&] { load_module_state(*b, c, "model/"); });
  EXPECT_TRUE(contains(msg, "/runs/x/step_00000010.h5")) << msg;
  EXPECT_TRUE(contains(msg, "missing (1): model/1.bias")) << msg;
  EXPECT_TRUE(contains(msg, "unexpected (1): model/2.weight")) << msg;
  EXPECT_TRUE(contains(msg, "model/0.weight: checkpoint (5,4) vs model (3,4)")) << msg;
  EXPECT_TRUE(contains(msg, "model/1.weight: checkpoint (5) vs model (3)")) << msg;
  EXPECT_FALSE(contains(msg, "ema/")) << msg;
  EXPECT_TRUE(same_bytes(b->named_parameters()["0.bias"], before));  // all or nothing

  std::string wrong_prefix = user_error_message([&] { load_module_state(*b, c, "net/"); });
  EXPECT_TRUE(contains(wrong_prefix, "ema/, model/")) << wrong_prefix;
}

// ---------------------------------------------------------------------------------------------

namespace {
torch::nn::Sequential make_mlp(uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::Sequential net(torch::nn::Linear(4, 8), torch::nn::LayerNorm(torch::nn::LayerNormOptions({8})),
                            torch::nn::Functional(torch::tanh), torch::nn::Linear(8, 2));
  net->named_parameters()["3.bias"].requires_grad_(false);  // frozen: never gets optimizer state
  return net;
}

void train(torch::nn::Sequential& net, torch::optim::AdamW& opt, int steps) {
  torch::manual_seed(99);
  torch::Tensor x = torch::randn({16, 4}), y = torch::randn({16, 2});
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    torch::mse_loss(net->forward(x), y).backward();
    opt.step();
  }
}

std::vector<torch::Tensor> optimized(torch::nn::Sequential& net, bool only_trainable) {
  std::vector<torch::Tensor> params;
  for (const auto& p : net->parameters()) {
    if (!only_trainable || p.requires_grad()) params.push_back(p);
  }
  return params;
}
}  // namespace

TEST(AdamWState, ResumeIsBitExact) {
  ScratchDir scratch("adamw");
  const fs::path dir = scratch.path();
  for (bool amsgrad : {false, true}) {
    SCOPED_TRACE(amsgrad ? "amsgrad" : "adamw");
    // Without amsgrad the optimizer holds every parameter (the frozen one gets no state); with
    // it, only the trainable ones, as the trainer does.
    auto options = torch::optim::AdamWOptions(1e-2).weight_decay(0.1).amsgrad(amsgrad);
    auto a = make_mlp(1);
    torch::optim::AdamW opt_a(optimized(a, amsgrad), options);
    train(a, opt_a, 3);

    Checkpoint c;
    c.step = 3;
    add_module_state(*a, "model/", c);
    add_adamw_state(opt_a, *a, c);
    EXPECT_EQ(c.tensors.count("optim/3.bias/step"), 0u);
    EXPECT_EQ(c.tensors.count("optim/0.weight/max_exp_avg_sq"), amsgrad ? 1u : 0u);
    EXPECT_EQ(c.tensors.at("optim/0.weight/step").item<int64_t>(), 3);
    const std::string path = (dir / "a.h5").string();
    save_checkpoint(path, c);
    Checkpoint r = load_checkpoint(path);

    auto b = make_mlp(2);
    torch::optim::AdamW opt_b(optimized(b, amsgrad), options);
    load_module_state(*b, r, "model/");
    load_adamw_state(opt_b, *b, r);
    EXPECT_EQ(opt_b.state().size(), opt_a.state().size());

    train(a, opt_a, 2);
    train(b, opt_b, 2);
    for (const auto& p : a->named_parameters()) {
      EXPECT_TRUE(same_bytes(b->named_parameters()[p.key()], p.value())) << p.key();
    }
    // The optimizer state was copied, not shared with the loaded checkpoint.
    EXPECT_TRUE(same_bytes(r.tensors.at("optim/0.weight/exp_avg"), c.tensors.at("optim/0.weight/exp_avg")));
  }
}

TEST(AdamWState, RefusesStateThatDoesNotFit) {
  auto a = make_mlp(1);
  torch::optim::AdamW opt_a(a->parameters(), torch::optim::AdamWOptions(1e-2));
  train(a, opt_a, 1);
  Checkpoint c;
  add_adamw_state(opt_a, *a, c);
  c.tensors["optim/0.weight/exp_avg"] = torch::zeros({3, 3});
  c.tensors.erase("optim/0.bias/exp_avg_sq");
  c.tensors["optim/9.weight/step"] = torch::scalar_tensor(1, torch::kLong);

  auto b = make_mlp(2);
  torch::optim::AdamW opt_b(b->parameters(), torch::optim::AdamWOptions(1e-2));
  std::string msg = user_error_message([&] { load_adamw_state(opt_b, *b, c); });
  EXPECT_TRUE(contains(msg, "optim/0.weight/exp_avg: checkpoint (3,3) vs model (8,4)")) << msg;
  EXPECT_TRUE(contains(msg, "optim/0.bias/exp_avg_sq: missing")) << msg;
  EXPECT_TRUE(contains(msg, "no parameter '9.weight'")) << msg;
  EXPECT_TRUE(opt_b.state().empty());
}

// ---------------------------------------------------------------------------------------------

TEST(RunDir, CheckpointPathIsZeroPadded) {
  EXPECT_EQ(checkpoint_path("/runs/a", 42), "/runs/a/checkpoints/step_00000042.h5");
  EXPECT_EQ(checkpoint_path("/runs/a", 123456789), "/runs/a/checkpoints/step_123456789.h5");
}

TEST(RunDir, CheckpointArgumentMayBeAFileLatestOrADirectory) {
  ScratchDir scratch("ckpt_arg");
  const std::string run = scratch.path().string();
  for (int64_t step : {10, 20}) save_checkpoint(checkpoint_path(run, step), small_checkpoint(step));
  mark_latest(run, "step_00000010.h5");  // latest need not be the newest file
  const std::string latest = checkpoint_path(run, 10);
  EXPECT_EQ(resolve_checkpoint_argument(checkpoint_path(run, 20)), checkpoint_path(run, 20));
  EXPECT_EQ(resolve_checkpoint_argument(run + "/checkpoints/latest"), latest);
  EXPECT_EQ(resolve_checkpoint_argument(run + "/checkpoints"), latest);
  EXPECT_EQ(resolve_checkpoint_argument(run + "/checkpoints/"), latest);
  EXPECT_EQ(resolve_checkpoint_argument(run), latest);
  EXPECT_EQ(resolve_checkpoint_argument(run + "/"), latest);
}

TEST(RunDir, LatestMovesAndResolveFallsBackPastDamagedFiles) {
  ScratchDir scratch("latest");
  const std::string run = scratch.path().string();
  EXPECT_TRUE(contains(user_error_message([&] { resolve_latest(run); }), run));
  for (int64_t step : {10, 20, 30}) {
    save_checkpoint(checkpoint_path(run, step), small_checkpoint(step));
    mark_latest(run, fs::path(checkpoint_path(run, step)).filename().string());
    EXPECT_EQ(resolve_latest(run), checkpoint_path(run, step));
  }
  EXPECT_EQ(reel::read_file(run + "/checkpoints/latest"), "step_00000030.h5\n");

  // The newest is damaged: fall back to step 20, saying what was skipped.
  fs::resize_file(checkpoint_path(run, 30), fs::file_size(checkpoint_path(run, 30)) / 2);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(resolve_latest(run), checkpoint_path(run, 20));
  std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(warning, "step_00000030.h5")) << warning;
  EXPECT_TRUE(contains(warning, "truncated or corrupt")) << warning;

  // The file `latest` names is gone, the next newest is damaged too, and `latest` itself is lost.
  fs::remove(checkpoint_path(run, 30));
  fs::resize_file(checkpoint_path(run, 20), 100);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(resolve_latest(run), checkpoint_path(run, 10));
  warning = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(warning, "does not exist")) << warning;
  EXPECT_TRUE(contains(warning, "step_00000020.h5")) << warning;
  fs::remove(run + "/checkpoints/latest");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(resolve_latest(run), checkpoint_path(run, 10));
  ::testing::internal::GetCapturedStderr();

  fs::resize_file(checkpoint_path(run, 10), 0);
  ::testing::internal::CaptureStderr();
  std::string msg = user_error_message([&] { resolve_latest(run); });
  ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(msg, run)) << msg;
  EXPECT_TRUE(contains(msg, "no complete checkpoint")) << msg;
}

TEST(RunDir, MarkLatestRefusesAFileThatIsNotThere) {
  ScratchDir scratch("mark");
  const std::string run = scratch.path().string();
  std::string msg = user_error_message([&] { mark_latest(run, "step_00000001.h5"); });
  EXPECT_TRUE(contains(msg, "step_00000001.h5")) << msg;
  EXPECT_FALSE(fs::exists(run + "/checkpoints/latest"));
}

TEST(RunDir, PruneKeepsTheNewestCompleteAndLatest) {
  ScratchDir scratch("prune");
  const std::string run = scratch.path().string();
  for (int64_t step = 10; step <= 60; step += 10) save_checkpoint(checkpoint_path(run, step), small_checkpoint(step));
  mark_latest(run, checkpoint_path(run, 20));  // e.g. 30..60 written but not yet marked
  fs::resize_file(checkpoint_path(run, 60), 100);  // damaged: neither counted nor deleted
  const fs::path dir = fs::path(run) / "checkpoints";
  std::ofstream(dir / "step_00000070.h5.tmp.12345") << "interrupted";

  prune_checkpoints(run, 0);
  EXPECT_EQ(files_in(dir).size(), 8u);
  ::testing::internal::CaptureStderr();
  prune_checkpoints(run, 2);
  std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(warning, "step_00000060.h5")) << warning;
  EXPECT_EQ(files_in(dir), (std::vector<std::string>{"latest", "step_00000020.h5", "step_00000040.h5",
                                                      "step_00000050.h5", "step_00000060.h5",
                                                      "step_00000070.h5.tmp.12345"}));
  EXPECT_EQ(resolve_latest(run), checkpoint_path(run, 20));
}

TEST(RunDir, PruneKeepsEveryMilestone) {
  ScratchDir scratch("prune_every");
  const std::string run = scratch.path().string();
  for (int64_t step = 10; step <= 70; step += 10) save_checkpoint(checkpoint_path(run, step), small_checkpoint(step));
  mark_latest(run, checkpoint_path(run, 70));
  prune_checkpoints(run, 2, 30);  // the newest two, and 30 and 60 for good
  const fs::path dir = fs::path(run) / "checkpoints";
  EXPECT_EQ(files_in(dir), (std::vector<std::string>{"latest", "step_00000030.h5", "step_00000060.h5",
                                                      "step_00000070.h5"}));
  prune_checkpoints(run, 1, 0);  // milestones are only kept while keep_every says so
  EXPECT_EQ(files_in(dir), (std::vector<std::string>{"latest", "step_00000070.h5"}));
}

TEST(CheckpointAverage, MeansModelAndEmaDropsOptimizerState) {
  std::vector<Checkpoint> in = {small_checkpoint(10), small_checkpoint(20), small_checkpoint(60)};
  for (Checkpoint& c : in) {
    c.tensors["ema/blocks.0.b"] = c.tensors["model/blocks.0.b"] * 2;
    c.tensors["optim/blocks.0.b/exp_avg"] = torch::ones({8});
    c.tensors["model/counter"] = torch::tensor(static_cast<int64_t>(c.step));
    c.meta["data_position"] = "{\"epoch\":0,\"batch\":1}";
    c.source = "run/step_" + std::to_string(c.step) + ".h5";
  }
  Checkpoint avg = average_checkpoints(in);
  EXPECT_EQ(avg.step, 60);
  EXPECT_TRUE(torch::equal(avg.tensors.at("model/blocks.0.w"), torch::arange(64, torch::kFloat).reshape({8, 8}) * 30));
  EXPECT_TRUE(torch::equal(avg.tensors.at("model/blocks.0.b"), torch::full({8}, 30.0)));
  EXPECT_TRUE(torch::equal(avg.tensors.at("ema/blocks.0.b"), torch::full({8}, 60.0)));
  EXPECT_EQ(avg.tensors.at("model/counter").item<int64_t>(), 10);  // not a float: the first input's
  EXPECT_EQ(avg.tensors.count("optim/blocks.0.b/exp_avg"), 0u);
  EXPECT_EQ(avg.meta.count("data_position"), 0u);
  EXPECT_EQ(avg.meta.at("recipe"), in[0].meta.at("recipe"));
  EXPECT_EQ(avg.meta.at("averaged_from"), "run/step_10.h5\nrun/step_20.h5\nrun/step_60.h5");
}

TEST(CheckpointAverage, RefusesDifferentModelsNamingTheTensor) {
  std::vector<Checkpoint> in = {small_checkpoint(1), small_checkpoint(2)};
  in[1].source = "other.h5";
  in[1].tensors["model/blocks.0.b"] = torch::zeros({9});
  std::string msg = user_error_message([&] { average_checkpoints(in); });
  EXPECT_TRUE(contains(msg, "model/blocks.0.b") && contains(msg, "other.h5") && contains(msg, "[9]")) << msg;
  in[1] = small_checkpoint(2);
  in[1].tensors.erase("model/blocks.0.w");
  msg = user_error_message([&] { average_checkpoints(in); });
  EXPECT_TRUE(contains(msg, "has no tensor 'model/blocks.0.w'")) << msg;
  in[1] = small_checkpoint(2);
  in[1].tensors["model/extra"] = torch::zeros({1});
  msg = user_error_message([&] { average_checkpoints(in); });
  EXPECT_TRUE(contains(msg, "model/extra")) << msg;
  msg = user_error_message([&] { average_checkpoints({small_checkpoint(1)}); });
  EXPECT_TRUE(contains(msg, "at least 2")) << msg;
}

TEST(InitFrom, CopiesResamplesPositionTablesKeepsNewAndRefusesOtherShapes) {
  auto a = std::make_shared<torch::nn::Module>(), b = std::make_shared<torch::nn::Module>();
  a->register_module("0", torch::nn::Linear(4, 3));
  b->register_module("0", torch::nn::Linear(4, 3));
  b->register_module("1", torch::nn::Linear(3, 2));
  auto pos = std::make_shared<torch::nn::Module>();
  pos->register_parameter("h", torch::zeros({4, 2}));
  pos->register_parameter("t", torch::zeros({3, 2}));
  b->register_module("pos_embed", pos);
  auto param = [&](const char* name) { return b->named_parameters()[name]; };

  Checkpoint ckpt;
  ckpt.source = "stage1/step_00000100.h5";
  add_module_state(*a, "model/", ckpt);
  ckpt.tensors["model/pos_embed.h"] = torch::tensor({{0.0, 10.0}, {4.0, 30.0}});  // 2 rows -> 4
  ckpt.tensors["model/pos_embed.t"] = torch::tensor({{1.0, 1.0}, {2.0, 2.0}});    // 2 frames -> 3
  ckpt.tensors["model/dropped.weight"] = torch::ones({5});
  const torch::Tensor fresh = param("1.weight").clone();
  InitReport r = init_from_checkpoint(*b, ckpt);
  EXPECT_TRUE(torch::equal(param("0.weight"), a->named_parameters()["0.weight"]));
  EXPECT_TRUE(torch::equal(param("1.weight"), fresh));  // new: its own initialization
  // h: rows at 1/8, 3/8, 5/8, 7/8 of the field between old rows at 1/4 and 3/4 (clamped at the ends).
  EXPECT_TRUE(torch::allclose(param("pos_embed.h"), torch::tensor({{0.0, 10.0}, {1.0, 15.0}, {3.0, 25.0}, {4.0, 30.0}})));
  EXPECT_TRUE(torch::equal(param("pos_embed.t"), torch::tensor({{1.0, 1.0}, {2.0, 2.0}, {2.0, 2.0}})));
  EXPECT_EQ(r.resampled, (std::vector<std::string>{"pos_embed.h", "pos_embed.t"}));
  EXPECT_EQ(r.fresh, (std::vector<std::string>{"1.bias", "1.weight"}));
  EXPECT_EQ(r.ignored, (std::vector<std::string>{"dropped.weight"}));
  EXPECT_EQ(r.copied, (std::vector<std::string>{"0.bias", "0.weight"}));

  // Any other shape change is refused, naming the tensor and both shapes, and changes nothing.
  ckpt.tensors["model/0.weight"] = torch::ones({3, 5});
  const torch::Tensor before = param("0.weight").clone();
  std::string msg = user_error_message([&] { init_from_checkpoint(*b, ckpt); });
  EXPECT_TRUE(contains(msg, "stage1/step_00000100.h5") && contains(msg, "model/0.weight: checkpoint [3, 5] vs model [3, 4]"))
      << msg;
  EXPECT_TRUE(torch::equal(param("0.weight"), before));
}
