// TEMPORARY
#include <gtest/gtest.h>
#include <chrono>
#include <iostream>
#include <ATen/Parallel.h>
static double now2() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class F> void timeit2(const char* name, F f, int iters = 3) {
  f();
  double t0 = now2();
  for (int i = 0; i < iters; ++i) f();
  std::cout << name << " " << (now2() - t0) / iters * 1000 << " ms\n";
}
TEST(Micro2, DISABLED_Ops) {
  at::set_num_threads(std::getenv("T") ? atoi(std::getenv("T")) : 2);
  std::cout << torch::show_config() << "\n" << at::get_parallel_info() << "\n";
  auto s = torch::randn({16, 4, 512, 512});
  auto out = torch::empty_like(s);
  timeit2("exp", [&] { torch::exp(s); });
  timeit2("exp_out", [&] { torch::exp_out(out, s); });
  timeit2("add_out", [&] { torch::add_out(out, s, s); });
  timeit2("softmax", [&] { torch::softmax(s, -1); });
  timeit2("_softmax_out", [&] { at::_softmax_out(out, s, -1, false); });
  timeit2("sum", [&] { s.sum(); });
  timeit2("empty_like", [&] { torch::empty_like(s); });
  timeit2("zeros_like", [&] { torch::zeros_like(s); });
  auto q = torch::randn({64, 512, 32}), k = torch::randn({64, 32, 512});
  timeit2("bmm", [&] { torch::bmm(q, k); });
  auto o = torch::empty({64, 512, 512});
  timeit2("bmm_out", [&] { torch::bmm_out(o, q, k); });
}
