// TEMPORARY benchmark (deleted before hand-off).
#include <gtest/gtest.h>
#include <chrono>
#include <iostream>
#include "model/registry.h"
#include "model/counts.h"
#include "model_test_util.h"
#include <torch/csrc/autograd/profiler_legacy.h>
using namespace reel::model;
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
TEST(Bench, DISABLED_TinyFwdBwd) {
  at::set_num_threads(2);
  const auto& tiny = find_size(find_model("t2v"), "tiny");
  T2VModel model(tiny);
  model->init_weights(0);
  reel::model::testing::perturb_zero_params(*model, 1);
  std::cout << "params " << param_count(tiny) << "\n";
  int B = std::getenv("B") ? atoi(std::getenv("B")) : 16;
  auto x = torch::randn({B, 3, 8, 16, 16});
  auto t = torch::rand({B});
  std::vector<std::string> caps(B, "FPS-8 a red ball bounces from left to right");
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-4));
  auto f = t2v_forward_flops(tiny, 512, 46);
  for (int i = 0; i < 2; ++i) { opt.zero_grad(); torch::mse_loss(model->forward(x, t, caps), x).backward(); }
  int iters = 5;
  double t0 = now();
  for (int i = 0; i < iters; ++i) { torch::NoGradGuard g; model->forward(x, t, caps); }
  double t1 = now();
  for (int i = 0; i < iters; ++i) { opt.zero_grad(); torch::mse_loss(model->forward(x, t, caps), x).backward(); }
  double t2 = now();
  for (int i = 0; i < iters; ++i) { opt.zero_grad(); torch::mse_loss(model->forward(x, t, caps), x).backward(); opt.step(); }
  double t3 = now();
  double fwd = (t1 - t0) / iters, fb = (t2 - t1) / iters, step = (t3 - t2) / iters;
  std::cout << "forward(no grad) " << fwd << " s, fwd+bwd " << fb << " s, fwd+bwd+adam " << step << " s\n";
  std::cout << "train GFLOP/step " << 3 * f.forward_flops * B / 1e9 << " -> " << 3 * f.forward_flops * B / 1e9 / fb << " GFLOP/s\n";
}
TEST(Bench, DISABLED_Profile) {
  at::set_num_threads(std::getenv("T") ? atoi(std::getenv("T")) : 1);
  const auto& tiny = find_size(find_model("t2v"), "tiny");
  T2VModel model(tiny);
  model->init_weights(0);
  reel::model::testing::perturb_zero_params(*model, 1);
  int B = 16;
  auto x = torch::randn({B, 3, 8, 16, 16});
  auto t = torch::rand({B});
  std::vector<std::string> caps(B, "FPS-8 a red ball bounces from left to right");
  for (int i = 0; i < 2; ++i) torch::mse_loss(model->forward(x, t, caps), x).backward();
  double t0 = now();
  {
    torch::autograd::profiler::RecordProfile guard("/tmp/reel_model_prof.json");
    torch::mse_loss(model->forward(x, t, caps), x).backward();
  }
  std::cout << "profiled step " << now() - t0 << " s\n";
}
TEST(Bench, DISABLED_Losses) {
  torch::manual_seed(0);
  T2VModel model(find_size(find_model("t2v"), "tiny"));
  model->init_weights(0);
  auto x = torch::randn({1, 3, 2, 8, 8});
  auto t = torch::tensor({0.4f});
  auto target = torch::randn_like(x);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(2e-3));
  for (int step = 0; step < 100; ++step) {
    opt.zero_grad();
    auto loss = torch::mse_loss(model->forward(x, t, {"FPS-8 a red ball bounces"}), target);
    loss.backward();
    opt.step();
    if (step % 10 == 0 || step == 99) std::cout << step << " " << loss.item<double>() << "\n";
  }
}
