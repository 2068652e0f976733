// Training state through checkpoints: module and AdamW state, run directories (latest, pruning),
// checkpoint averaging and init_from.
#include "trainer/checkpoint.h"
#include "trainer/init_from.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/fs.h"
#include "tests/test_util.h"
#include "tests/trainer/checkpoint_test_util.h"

namespace fs = std::filesystem;
using namespace reel::trainer;
using reel::testing::contains;
using reel::testing::files_in;
using reel::testing::same_bytes;
using reel::testing::ScratchDir;
using reel::testing::small_checkpoint;
using reel::testing::user_error_message;

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

TEST(InitFrom, TextSlotWeightsComeFromTheSlotOfTheSameName) {
  // Two models whose "text.a" slots hold an encoder (and a projection that is not copied).
  auto model = [](int64_t width) {
    auto slot = std::make_shared<torch::nn::Module>();
    slot->register_module("encoder", torch::nn::Linear(width, 3));
    slot->register_module("proj", torch::nn::Linear(3, 2));
    auto text = std::make_shared<torch::nn::Module>();
    text->register_module("a", slot);
    auto m = std::make_shared<torch::nn::Module>();
    m->register_module("text", text);
    return m;
  };
  auto source = model(4), target = model(4);
  Checkpoint ckpt;
  ckpt.source = "encoders/step_00000010.h5";
  add_module_state(*source, "model/", ckpt);
  auto param = [](const std::shared_ptr<torch::nn::Module>& m, const char* name) { return m->named_parameters()[name]; };
  const torch::Tensor proj = param(target, "text.a.proj.weight").clone();
  EXPECT_EQ(load_text_encoder_weights(*target, "a", ckpt), 2);
  EXPECT_TRUE(torch::equal(param(target, "text.a.encoder.weight"), param(source, "text.a.encoder.weight")));
  EXPECT_TRUE(torch::equal(param(target, "text.a.encoder.bias"), param(source, "text.a.encoder.bias")));
  EXPECT_TRUE(torch::equal(param(target, "text.a.proj.weight"), proj));  // only the encoder

  // Another size, or a checkpoint without the slot: refused, naming the file and the tensor.
  std::string msg = user_error_message([&] { load_text_encoder_weights(*model(5), "a", ckpt); });
  EXPECT_TRUE(contains(msg, "encoders/step_00000010.h5") && contains(msg, "model/text.a.encoder.weight is [3, 4]"))
      << msg;
  ckpt.tensors.erase("model/text.a.encoder.bias");
  msg = user_error_message([&] { load_text_encoder_weights(*target, "a", ckpt); });
  EXPECT_TRUE(contains(msg, "has no model/text.a.encoder.bias")) << msg;
}
