// Activation checkpointing on one process: the same gradients as without, for the inputs and the
// parameters of a real block, with the block run twice (forward, then again in backward).
#include <gtest/gtest.h>

#include "parallel/activation_checkpoint.h"
#include "tests/model/model_test_util.h"

namespace reel::parallel {
namespace {

struct Grads {
  torch::Tensor out, x, mod, text;
  std::vector<torch::Tensor> params;
};

Grads run_block(model::T2VModel& m, bool recompute, int* calls) {
  torch::manual_seed(5);
  auto x = torch::randn({2, 6, 32}, torch::requires_grad());
  auto mod = torch::randn({2, 6, 32}, torch::requires_grad());
  auto text = torch::randn({2, 5, 32}, torch::requires_grad());
  auto mask = torch::ones({2, 5}, torch::kBool);
  mask[1][4] = false;
  model::VideoBlock block = m->transformer->block_list()[0];
  CheckpointedFn fn = [&](const std::vector<torch::Tensor>& in) {
    ++*calls;
    return block(in[0], in[1], model::TextTokens{in[2], in[3]});
  };
  m->zero_grad();
  std::vector<torch::Tensor> in = {x * 1.0, mod * 1.0, text * 1.0, mask};  // non-leaf inputs, as in the model
  torch::Tensor out = recompute ? checkpoint(fn, in) : fn(in);
  if (recompute) EXPECT_NE(out.grad_fn()->name().find("CheckpointFunction"), std::string::npos);
  (out * out).sum().backward();
  Grads g{out.detach(), x.grad(), mod.grad(), text.grad(), {}};
  for (auto& p : block->parameters()) g.params.push_back(p.grad().clone());
  return g;
}

TEST(ActivationCheckpoint, SameGradientsAndTheBlockRunsTwice) {
  model::T2VModel m(model::testing::small_options());
  m->init_weights(3);
  model::testing::perturb_zero_params(*m, 4);
  int plain_calls = 0, recompute_calls = 0;
  Grads plain = run_block(m, false, &plain_calls);
  Grads recomputed = run_block(m, true, &recompute_calls);
  EXPECT_EQ(plain_calls, 1);
  EXPECT_EQ(recompute_calls, 2);
  EXPECT_TRUE(torch::allclose(plain.out, recomputed.out));
  EXPECT_TRUE(torch::allclose(plain.x, recomputed.x, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(plain.mod, recomputed.mod, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(plain.text, recomputed.text, 1e-5, 1e-6));
  ASSERT_EQ(plain.params.size(), recomputed.params.size());
  for (size_t i = 0; i < plain.params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(plain.params[i], recomputed.params[i], 1e-5, 1e-6)) << "parameter " << i;
    EXPECT_GT(plain.params[i].abs().sum().item<double>(), 0) << "parameter " << i << " got no gradient";
  }
}

TEST(ActivationCheckpoint, OutsideGradModeIsAPlainCall) {
  int calls = 0;
  CheckpointedFn fn = [&](const std::vector<torch::Tensor>& in) {
    ++calls;
    return in[0] * 2;
  };
  torch::NoGradGuard no_grad;
  torch::Tensor out = checkpoint(fn, {torch::ones({3}, torch::requires_grad())});
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(out.requires_grad());
}

}  // namespace
}  // namespace reel::parallel
