// The text-to-video model: seeded init, learning a target, caption sensitivity.
#include <gtest/gtest.h>

#include "model/registry.h"
#include "model/t2v.h"
#include "model_test_util.h"

using namespace reel::model;
using namespace reel::model::testing;

TEST(T2VModel, InitIsDeterministicPerSeedAndIgnoresGlobalRng) {
  const auto& tiny = find_size(find_model("t2v"), "tiny");
  T2VModel a(tiny), b(tiny), c(tiny);
  torch::manual_seed(1);
  a->init_weights(42);
  torch::manual_seed(2);
  b->init_weights(42);
  c->init_weights(43);
  auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
  bool any_differs = false;
  for (const auto& p : pa) {
    EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
    any_differs |= !torch::equal(p.value(), pc[p.key()]);
  }
  EXPECT_TRUE(any_differs);
  EXPECT_FALSE(torch::equal(pa["transformer.blocks.0.attn.qkv.weight"], pc["transformer.blocks.0.attn.qkv.weight"]));
  EXPECT_FALSE(torch::equal(pa["text.byte.encoder.embed.weight"], pc["text.byte.encoder.embed.weight"]));
}

TEST(T2VModel, OverfitsOneExampleIn100AdamSteps) {
  torch::manual_seed(0);
  T2VModel model(find_size(find_model("t2v"), "tiny"));
  model->init_weights(0);
  auto x = torch::randn({1, 3, 2, 8, 8});
  auto t = torch::tensor({0.4f});
  auto target = torch::randn_like(x);
  std::vector<std::string> caption = {"FPS-8 a red ball bounces"};
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(2e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    opt.zero_grad();
    auto loss = torch::mse_loss(model->forward(x, t, caption), target);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_GT(first, 0.5);  // the zero-initialised model predicts 0: loss = mean(target^2) ~ 1
  EXPECT_LT(last, first / 10) << "first " << first << " last " << last;
}

TEST(T2VModel, CaptionChangesOutputAfterTraining) {
  torch::manual_seed(1);
  T2VModel model(small_options());
  model->init_weights(1);
  auto x = torch::randn({2, 3, 2, 8, 8});
  auto t = torch::tensor({0.5f, 0.5f});
  std::vector<std::string> captions = {"a red ball", "a blue cube"};
  {
    torch::NoGradGuard no_grad;  // at init the final layer is zero: nothing can matter yet
    auto v = model->forward(x, t, captions);
    EXPECT_TRUE(torch::equal(v, torch::zeros_like(v)));
  }
  auto target = torch::randn_like(x);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    torch::mse_loss(model->forward(x, t, captions), target).backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  auto same = torch::cat({x[0].unsqueeze(0), x[0].unsqueeze(0)});
  auto v = model->forward(same, t, {"a red ball", "a blue cube"});
  auto again = model->forward(same, t, {"a red ball", "a red ball"});
  EXPECT_TRUE(torch::allclose(again[0], again[1], 1e-6, 1e-6));  // same input, same caption
  EXPECT_GT((v[0] - v[1]).abs().max().item<float>(), 1e-4);      // only the caption differs
}

TEST(T2VModel, TextEncoderLearnsFromTheSecondStep) {
  // The first update makes the zero-initialised output layer non-zero; from then on the caption
  // path must carry gradient to the text encoder (a zero-initialised, ungated cross-attention
  // output would block it and the model would ignore its captions for hundreds of steps).
  torch::manual_seed(2);
  T2VModel model(small_options());
  model->init_weights(2);
  auto x = torch::randn({2, 3, 2, 8, 8});
  auto t = torch::tensor({0.3f, 0.7f});
  auto target = torch::randn_like(x);
  std::vector<std::string> captions = {"a red ball", "a blue cube"};
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    torch::mse_loss(model->forward(x, t, captions), target).backward();
    if (step == 1) {
      for (const auto& p : model->named_parameters()) {
        if (p.key().rfind("text.", 0) != 0 || p.key().find("bias") != std::string::npos) continue;
        ASSERT_TRUE(p.value().grad().defined()) << p.key();
        EXPECT_GT(p.value().grad().abs().max().item<float>(), 0.0f) << p.key() << " gets no gradient";
      }
    }
    opt.step();
  }
}
