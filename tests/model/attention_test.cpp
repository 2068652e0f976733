// attention(): agrees with a loop-by-loop reference, honours the key mask, never yields NaN.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>

#include "model/attention.h"

using namespace reel::model;

namespace {

// Straightforward per (b, h, i) softmax over the unmasked keys, in double.
torch::Tensor reference_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& mask) {
  auto qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), vd = v.to(torch::kDouble);
  auto out = torch::zeros_like(qd);
  int64_t B = q.size(0), H = q.size(1), N = q.size(2), M = k.size(2), D = q.size(3);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) {
        std::vector<double> w(M, 0.0);
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < M; ++j) {
          if (!mask[b][j].item<bool>()) continue;
          w[j] = (qd[b][h][i] * kd[b][h][j]).sum().item<double>() / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, w[j]);
        }
        for (int64_t j = 0; j < M; ++j) {
          if (!mask[b][j].item<bool>()) { w[j] = 0; continue; }
          w[j] = std::exp(w[j] - mx);
          sum += w[j];
        }
        for (int64_t j = 0; j < M; ++j) out[b][h][i] += vd[b][h][j] * (w[j] / sum);
      }
  return out;
}

}  // namespace

TEST(Attention, MatchesReferenceWithKeyMask) {
  torch::manual_seed(0);
  auto q = torch::randn({2, 3, 5, 4}), k = torch::randn({2, 3, 7, 4}), v = torch::randn({2, 3, 7, 4});
  auto mask = torch::ones({2, 7}, torch::kBool);
  mask[0].slice(0, 4).fill_(false);  // sample 0 has 4 real keys
  mask[1][2] = false;
  auto got = attention(q, k, v, mask).to(torch::kDouble);
  EXPECT_TRUE(torch::allclose(got, reference_attention(q, k, v, mask), 1e-5, 1e-5));
  auto all = torch::ones({2, 7}, torch::kBool);
  EXPECT_TRUE(torch::allclose(attention(q, k, v, {}).to(torch::kDouble), reference_attention(q, k, v, all), 1e-5, 1e-5));
}

TEST(Attention, MaskedKeysDoNotInfluenceOutput) {
  torch::manual_seed(1);
  auto q = torch::randn({1, 2, 3, 8}), k = torch::randn({1, 2, 6, 8}), v = torch::randn({1, 2, 6, 8});
  auto mask = torch::tensor({true, true, true, false, false, false}).view({1, 6});
  auto a = attention(q, k, v, mask);
  auto k2 = k.clone(), v2 = v.clone();
  k2.slice(2, 3) += 100.0;
  v2.slice(2, 3) -= 50.0;
  EXPECT_TRUE(torch::allclose(a, attention(q, k2, v2, mask), 1e-6, 1e-6));
  auto truncated = attention(q, k.slice(2, 0, 3), v.slice(2, 0, 3), {});
  EXPECT_TRUE(torch::allclose(a, truncated, 1e-5, 1e-6));
}

void expect_gradients_match_autograd_through_softmax() {
  torch::manual_seed(2);
  auto opts = torch::TensorOptions().dtype(torch::kDouble).requires_grad(true);
  // Non-contiguous inputs, as the layers pass them (heads split out of a fused projection).
  auto qkv = torch::randn({2, 6, 3, 3, 4}, opts);  // (B, N, 3, H, Dh)
  auto ctx = torch::randn({2, 5, 2, 3, 4}, opts);  // (B, Nk, 2, H, Dh)
  auto mask = torch::tensor({true, true, false, true, false, true, true, true, true, false}).view({2, 5});
  auto grad_out = torch::randn({2, 3, 6, 4}, torch::kDouble);
  auto q = qkv.select(2, 0).transpose(1, 2), k = ctx.select(2, 0).transpose(1, 2), v = ctx.select(2, 1).transpose(1, 2);

  (attention(q, k, v, mask) * grad_out).sum().backward();
  auto got_q = qkv.grad().clone(), got_kv = ctx.grad().clone();
  qkv.mutable_grad().zero_();
  ctx.mutable_grad().zero_();

  auto scores = torch::matmul(q, k.transpose(-2, -1)) / 2.0;  // sqrt(Dh) = 2
  scores = scores.masked_fill(mask.logical_not().view({2, 1, 1, 5}), -1e30);
  (torch::matmul(torch::softmax(scores, -1), v) * grad_out).sum().backward();
  EXPECT_TRUE(torch::allclose(got_q, qkv.grad(), 1e-10, 1e-10));
  EXPECT_TRUE(torch::allclose(got_kv, ctx.grad(), 1e-10, 1e-10));
  EXPECT_GT(got_kv.abs().sum().item<double>(), 0.0);
}

TEST(Attention, GradientsMatchAutogradThroughSoftmax) { expect_gradients_match_autograd_through_softmax(); }

// bf16 (trainer.dtype: bf16) with masked keys: the mask value must fit bf16, whose largest finite
// magnitude is below fp32's; the result matches fp32 within bf16 rounding.
TEST(Attention, MaskedBf16MatchesFloat) {
  for (auto dtype : {torch::kBFloat16}) {  // LibTorch 1.13 has no CPU fp16 bmm
    torch::manual_seed(6);
    auto q = torch::randn({2, 2, 4, 8}), k = torch::randn({2, 2, 5, 8}), v = torch::randn({2, 2, 5, 8});
    auto mask = torch::tensor({true, true, false, true, false, true, true, true, true, false}).view({2, 5});
    auto expected = attention(q, k, v, mask);
    auto low = attention(q.to(dtype), k.to(dtype), v.to(dtype), mask);
    EXPECT_TRUE(torch::allclose(low.to(torch::kFloat), expected, 0.05, 0.05)) << dtype;
  }
}

TEST(Attention, SeveralThreadsGiveTheSameGradients) {
  // The same check with LibTorch's kernels running on 4 threads (the test binary otherwise runs
  // with OMP_NUM_THREADS=1, where no kernel splits its work).
  const int before = at::get_num_threads();
  at::set_num_threads(4);
  expect_gradients_match_autograd_through_softmax();
  at::set_num_threads(before);
}

TEST(Attention, FullyMaskedRowIsFinite) {
  auto q = torch::randn({1, 1, 2, 4}), k = torch::randn({1, 1, 3, 4}), v = torch::randn({1, 1, 3, 4});
  auto out = attention(q, k, v, torch::zeros({1, 3}, torch::kBool));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
}

// The entropy diagnostic: log(unmasked keys) for uniform weights (q = 0), near 0 when every
// query matches one key far better than the rest, and per head.
TEST(Attention, EntropyOfUniformAndOfPeakedWeights) {
  const int64_t B = 2, N = 6, D = 4;
  torch::Tensor k = torch::zeros({B, 2, N, D});
  for (int64_t j = 0; j < 4; ++j) k.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), j, j}, 1.0);
  torch::Tensor q = torch::zeros({B, 2, N, D});
  q.select(1, 1).copy_(k.select(1, 1) * 100);  // head 1: query j matches key j only (for j < 4)
  q.select(1, 1).narrow(1, 4, 2).select(2, 0).fill_(100);  // queries 4, 5 match key 0
  torch::Tensor e = attention_entropy(q, k, {});
  ASSERT_EQ(e.sizes(), torch::IntArrayRef({2}));
  EXPECT_NEAR(e[0].item<float>(), std::log(6.0), 1e-5);  // head 0: q = 0, uniform
  EXPECT_LT(e[1].item<float>(), 1e-3);
  torch::Tensor mask = torch::ones({B, N}, torch::kBool);
  mask.narrow(1, 3, 3).fill_(false);
  e = attention_entropy(q, k, mask);
  EXPECT_NEAR(e[0].item<float>(), std::log(3.0), 1e-5);  // uniform over the 3 unmasked keys
  EXPECT_TRUE(torch::isfinite(e).all().item<bool>());
}

// forward() records the entropy only when asked, and the recorded value is that of its heads.
TEST(Attention, SelfAttentionKeepsEntropyWhenAsked) {
  SelfAttention attn(8, 2, /*bias=*/false);
  at::Generator gen = at::detail::createCPUGenerator(3);
  attn->init_weights(gen);
  torch::Tensor x = torch::randn({1, 5, 8});
  attn->forward(x);
  EXPECT_FALSE(attn->entropy.defined());
  attn->keep_entropy = true;
  attn->forward(x);
  ASSERT_TRUE(attn->entropy.defined());
  ASSERT_EQ(attn->entropy.numel(), 2);
  auto qkv = attn->qkv(x).view({1, 5, 3, 2, 4}).permute({2, 0, 3, 1, 4});
  EXPECT_TRUE(torch::allclose(attn->entropy, attention_entropy(qkv[0], qkv[1], {})));
  EXPECT_LT(attn->entropy.max().item<float>(), std::log(5.0) + 1e-5);
}

TEST(Attention, QkNormScoresIgnoreTheScaleOfQAndK) {
  // Scaling the q and k projections sharpens plain attention; with qk_norm (q and k RMS-normalised
  // per head) the weights and the output stay as they were.
  SelfAttention attn(8, 2, /*bias=*/false);
  at::Generator gen = at::detail::createCPUGenerator(4);
  attn->init_weights(gen);
  attn->keep_entropy = true;
  torch::NoGradGuard no_grad;
  torch::Tensor x = at::randn({1, 6, 8}, gen);
  auto scaled = [&](double scale) {
    torch::Tensor w = attn->qkv->weight.clone();
    attn->qkv->weight.narrow(0, 0, 16).mul_(scale);  // the q and k rows
    torch::Tensor y = attn->forward(x);
    attn->qkv->weight.copy_(w);
    return std::make_pair(attn->entropy.clone(), y);
  };
  auto [plain1, y1] = scaled(1.0);
  auto [plain4, y4] = scaled(4.0);
  EXPECT_TRUE((plain4 < plain1 - 0.01).all().item<bool>()) << plain1 << plain4;
  attn->qk_norm = true;
  auto [norm1, n1] = scaled(1.0);
  auto [norm4, n4] = scaled(4.0);
  EXPECT_TRUE(torch::allclose(norm1, norm4, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(n1, n4, 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(n1, y1, 1e-3, 1e-3));
}
