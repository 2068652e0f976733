// FSDP and HSDP against one process: the small text-to-video model trained for a few AdamW steps
// on one global batch, every rank taking its rows, must end where a single process ends that
// trains on the whole batch (computed on every rank as the reference).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "common/torch_compat.h"
#include "parallel/activation_checkpoint.h"
#include "parallel/fsdp.h"
#include "parallel/mesh.h"
#include "tests/model/model_test_util.h"
#include "tests/parallel/mpi_test_env.h"

namespace reel::parallel {
namespace {

using reel::model::T2VModel;
using reel::testing::world;

constexpr int64_t kGlobalBatch = 8;
constexpr int kSteps = 3;
constexpr double kClip = 0.05;  // small enough that clipping acts (the global norm matters)

T2VModel make_model(int64_t depth = 3) {
  model::T2VOptions o = model::testing::small_options(/*with_text_extras=*/true);
  o.transformer.depth = depth;
  T2VModel m(o);
  m->init_weights(7);
  model::testing::perturb_zero_params(*m, 8);
  return m;
}

struct Batch {
  torch::Tensor x, t, target;
  std::vector<std::string> captions;
};

Batch global_batch(int step) {
  auto gen = at::detail::createCPUGenerator(100 + step);
  Batch b;
  b.x = torch::randn({kGlobalBatch, 3, 2, 4, 4}, gen);
  b.t = torch::rand({kGlobalBatch}, gen);
  b.target = torch::randn({kGlobalBatch, 3, 2, 4, 4}, gen);
  const char* words[] = {"a red circle", "blue square moving left", "", "green triangle up"};
  for (int64_t i = 0; i < kGlobalBatch; ++i) b.captions.push_back(words[(i + step) % 4]);
  return b;
}

Batch rows(const Batch& b, int64_t first, int64_t n) {
  return {b.x.narrow(0, first, n), b.t.narrow(0, first, n), b.target.narrow(0, first, n),
          std::vector<std::string>(b.captions.begin() + first, b.captions.begin() + first + n)};
}

torch::optim::AdamWOptions adam() { return torch::optim::AdamWOptions(1e-2).weight_decay(0.1); }

// One process, whole batch: losses per step; the model is left trained.
std::vector<double> train_reference(T2VModel& m) {
  std::vector<torch::Tensor> params = m->parameters();
  torch::optim::AdamW opt(params, adam());
  std::vector<double> losses;
  for (int s = 0; s < kSteps; ++s) {
    Batch b = global_batch(s);
    opt.zero_grad();
    auto loss = torch::mse_loss(m->forward(b.x, b.t, b.captions), b.target);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, kClip);
    opt.step();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

struct FsdpRun {
  std::vector<double> losses;
  std::map<std::string, torch::Tensor> weights;
  int64_t peak_bytes = 0;
  int64_t held_bytes = 0;  // after the last step: shards, their gradients and Adam moments, gathered storage
};

// Trained under FSDP over `mesh`'s fsdp group (HSDP over its replicate group).
FsdpRun train_fsdp(Mesh& mesh, FsdpOptions fo, int64_t depth = 3, bool checkpointing = false) {
  T2VModel m = make_model(depth);
  Communicator& shard = mesh.group(MeshGroup::kFsdp);
  Communicator& replicate = mesh.group(MeshGroup::kReplicate);
  Communicator& dp = mesh.group(MeshGroup::kDp);
  Fsdp fsdp(*m, m->block_prefixes(), shard, &replicate, fo);
  m->transformer->set_block_runner([&](int64_t i, const std::vector<torch::Tensor>& in, const model::BlockFn& run) {
    return fsdp.run_unit(i, [&] { return checkpointing ? checkpoint(run, in) : run(in); });
  });
  torch::optim::AdamW opt(fsdp.shards(), adam());
  FsdpRun r;
  const int64_t n = kGlobalBatch / dp.size();
  for (int s = 0; s < kSteps; ++s) {
    Batch b = rows(global_batch(s), dp.rank() * n, n);
    fsdp.zero_grad();
    fsdp.reset_peak();
    auto loss = torch::mse_loss(m->forward(b.x, b.t, b.captions), b.target);
    loss.backward();
    fsdp.finish_backward();
    fsdp.synchronize();
    fsdp.clip_grad_norm(kClip);
    opt.step();
    fsdp.after_optimizer_step();
    torch::Tensor mean = loss.detach().reshape({1}).clone();
    dp.all_reduce(mean, ReduceOp::kAvg);
    r.losses.push_back(mean.item<double>());
    r.peak_bytes = std::max(r.peak_bytes, fsdp.peak_gathered_bytes());
  }
  r.held_bytes = fsdp.gathered_bytes();
  for (const auto& s : fsdp.shards()) {
    r.held_bytes += s.nbytes() + s.grad().nbytes();
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(
        *opt.state().at(reel::compat::optimizer_state_key(s)));
    r.held_bytes += st.exp_avg().nbytes() + st.exp_avg_sq().nbytes();
  }
  for (auto& [name, t] : fsdp.full_tensors([&](int64_t u) { return fsdp.shards()[u]; })) r.weights[name] = t;
  m->transformer->set_block_runner(nullptr);
  return r;
}

void expect_equal_to_one_process(const FsdpRun& run) {
  T2VModel ref = make_model();
  std::vector<double> losses = train_reference(ref);
  for (int s = 0; s < kSteps; ++s) EXPECT_NEAR(run.losses[s], losses[s], 1e-5 * losses[s]) << "step " << s;
  int64_t compared = 0;
  for (const auto& p : ref->named_parameters()) {
    auto it = run.weights.find(p.key());
    ASSERT_NE(it, run.weights.end()) << p.key();
    double rel = (it->second - p.value()).norm().item<double>() / (p.value().norm().item<double>() + 1e-12);
    EXPECT_LT(rel, 1e-5) << p.key() << " on rank " << world().rank();
    ++compared;
  }
  EXPECT_EQ(compared, int64_t(run.weights.size()));
}

ParallelDims dims(int replicate) { return ParallelDims{replicate, -1, 1, 1}; }

TEST(Fsdp, MatchesOneProcess) {
  Mesh mesh(world(), dims(1));
  expect_equal_to_one_process(train_fsdp(mesh, {}));
}

TEST(Fsdp, MatchesOneProcessWithoutReshardOrPrefetch) {
  Mesh mesh(world(), dims(1));
  FsdpOptions o;
  o.reshard_after_forward = false;
  o.prefetch = false;
  expect_equal_to_one_process(train_fsdp(mesh, o));
}

TEST(Fsdp, MatchesOneProcessWithActivationCheckpointing) {
  Mesh mesh(world(), dims(1));
  expect_equal_to_one_process(train_fsdp(mesh, {}, 3, /*checkpointing=*/true));
}

TEST(Fsdp, HsdpMatchesOneProcess) {
  if (world().size() % 2 != 0) GTEST_SKIP() << "HSDP needs an even number of ranks";
  Mesh mesh(world(), dims(2));
  expect_equal_to_one_process(train_fsdp(mesh, {}));
}

// What sharding saves: each rank's master shard is 1/N of the unit, and at no point of a step
// are all blocks gathered at once. With 6 blocks and reshard after forward, backward holds at most
// three blocks' parameters (this one, the prefetched one, the one just released) and three
// blocks' gradients (this one, one in reduction, one waited on) beside the root's.
TEST(Fsdp, ShardsAreOneNthAndBlocksAreReleased) {
  constexpr int64_t kDepth = 6;
  Mesh mesh(world(), dims(1));
  T2VModel m = make_model(kDepth);
  int64_t total = 0, block = 0;
  for (const auto& p : m->named_parameters()) {
    total += p.value().numel();
    if (p.key().rfind("transformer.blocks.0.", 0) == 0) block += p.value().numel();
  }
  Communicator& shard = mesh.group(MeshGroup::kFsdp);
  Fsdp fsdp(*m, m->block_prefixes(), shard, nullptr);
  int64_t held = 0;
  for (const auto& s : fsdp.shards()) held += s.numel();
  EXPECT_LE(held, total / shard.size() + fsdp.num_units());
  EXPECT_GE(held, total / shard.size());
  // Between steps only the root is gathered (padded to a multiple of the group size).
  const int64_t root = total - kDepth * block, pad = 4 * shard.size();
  EXPECT_GE(fsdp.gathered_bytes(), root * 4);
  EXPECT_LE(fsdp.gathered_bytes(), root * 4 + pad);
  const int64_t block_bytes = block * 4 + pad;
  FsdpRun run = train_fsdp(mesh, {}, kDepth);
  // The bar: parameters, gradients and Adam moments held between steps are at most 1/N of
  // one process's (4 fp32 copies of every parameter) plus one unit gathered (the root) plus 5%.
  const double one_process = 16.0 * total;
  EXPECT_LE(run.held_bytes, 1.05 * (one_process / shard.size() + root * 4)) << "held " << run.held_bytes;
  EXPECT_LE(run.peak_bytes, 2 * (root * 4 + pad) + 6 * block_bytes) << "more than three blocks were gathered";
  FsdpOptions keep;
  keep.reshard_after_forward = false;
  FsdpRun kept = train_fsdp(mesh, keep, kDepth);
  EXPECT_GE(kept.peak_bytes, 2 * root * 4 + kDepth * block * 4) << "without reshard every block stays gathered";
}

// Mixed precision: parameters gathered (and gradients accumulated) in bf16 under CPU autocast,
// master shards, Adam and the fp32 gradient reduction as before. Half the gathered bytes, and
// losses within bf16 rounding of the fp32 FSDP run.
TEST(Fsdp, Bf16GatherHalvesGatheredBytesAndTrainsAlike) {
  Mesh mesh(world(), dims(1));
  FsdpRun fp32 = train_fsdp(mesh, {});
  FsdpOptions fo;
  fo.param_dtype = torch::kBFloat16;
  reel::compat::set_autocast(c10::DeviceType::CPU, true);
  FsdpRun bf16 = train_fsdp(mesh, fo);
  reel::compat::set_autocast(c10::DeviceType::CPU, false);
  EXPECT_LE(bf16.peak_bytes, fp32.peak_bytes / 2 + 64) << "fp32 peak " << fp32.peak_bytes;
  EXPECT_GE(bf16.peak_bytes, fp32.peak_bytes / 2 - 64) << "fp32 peak " << fp32.peak_bytes;
  for (int s = 0; s < kSteps; ++s) EXPECT_NEAR(bf16.losses[s], fp32.losses[s], 2e-2 * fp32.losses[s]) << "step " << s;
  for (const auto& [name, w] : fp32.weights) {
    ASSERT_EQ(bf16.weights.at(name).scalar_type(), torch::kFloat32) << name << ": checkpoints hold the fp32 masters";
  }
}

}  // namespace
}  // namespace reel::parallel
