// TEMPORARY micro benchmark (deleted before hand-off).
#include <gtest/gtest.h>
#include <chrono>
#include <iostream>
#include "model/attention.h"
#include "model/layers.h"
#include "model/registry.h"
#include "model_test_util.h"
using namespace reel::model;
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class F> void timeit(const char* name, F f, int iters = 3) {
  f();
  double t0 = now();
  for (int i = 0; i < iters; ++i) f();
  std::cout << name << " " << (now() - t0) / iters * 1000 << " ms\n";
}
TEST(Micro, DISABLED_Parts) {
  at::set_num_threads(std::getenv("T") ? atoi(std::getenv("T")) : 2);
  int B = 16, H = 4, N = 512, Dh = 32, D = 128;
  auto q = torch::randn({B, H, N, Dh}, torch::requires_grad());
  auto k = torch::randn({B, H, N, Dh}, torch::requires_grad());
  auto v = torch::randn({B, H, N, Dh}, torch::requires_grad());
  timeit("attn fwd", [&] { torch::NoGradGuard g; attention(q, k, v, {}); });
  timeit("attn fwd+bwd", [&] { attention(q, k, v, {}).sum().backward(); });
  auto s = torch::randn({B, H, N, N}, torch::requires_grad());
  timeit("softmax fwd+bwd", [&] { (torch::softmax(s, -1) * 1.0).sum().backward(); });
  timeit("matmul qk fwd+bwd", [&] { torch::matmul(q, k.transpose(-2, -1)).sum().backward(); });
  auto x = torch::randn({B, N, D}, torch::requires_grad());
  SwiGLU ffn(D, 352);
  timeit("swiglu fwd+bwd", [&] { ffn(x).sum().backward(); });
  SelfAttention sa(D, H, false);
  timeit("selfattn fwd+bwd", [&] { sa(x).sum().backward(); });
  timeit("rmsnorm fwd+bwd", [&] { rms_norm(x, 1e-6).sum().backward(); });
  auto a = torch::randn({B * N, D}), w = torch::randn({352 * 2, D});
  timeit("gemm 8192x128x704", [&] { torch::mm(a, w.t()); });
}
