// The fused RMSNorm + adaLN modulation against its plain-op definition: values and all three
// gradients, both shapes of shift/scale, non-contiguous inputs, and the shape check.
#include <gtest/gtest.h>

#include "common/error.h"
#include "kernels/norm_modulate.h"

using namespace reel::kernels;

namespace {

struct Grads {
  torch::Tensor y, dx, dshift, dscale;
};

template <typename Fn>
Grads run(Fn fn, const torch::Tensor& x0, const torch::Tensor& shift0, const torch::Tensor& scale0,
          const torch::Tensor& dy) {
  auto x = x0.clone().requires_grad_(true), shift = shift0.clone().requires_grad_(true),
       scale = scale0.clone().requires_grad_(true);
  auto y = fn(x, shift, scale, 1e-6);
  y.backward(dy);
  return {y.detach(), x.grad(), shift.grad(), scale.grad()};
}

void expect_same(const Grads& a, const Grads& b) {
  EXPECT_TRUE(torch::allclose(a.y, b.y, 1e-5, 1e-5)) << (a.y - b.y).abs().max();
  EXPECT_TRUE(torch::allclose(a.dx, b.dx, 1e-4, 1e-5)) << (a.dx - b.dx).abs().max();
  EXPECT_TRUE(torch::allclose(a.dshift, b.dshift, 1e-4, 1e-5)) << (a.dshift - b.dshift).abs().max();
  EXPECT_TRUE(torch::allclose(a.dscale, b.dscale, 1e-4, 1e-5)) << (a.dscale - b.dscale).abs().max();
  EXPECT_EQ(a.dshift.sizes(), b.dshift.sizes());
}

}  // namespace

TEST(NormModulate, ReferenceIsRmsNormThenModulation) {
  torch::manual_seed(0);
  auto x = torch::randn({2, 3, 8}), shift = torch::randn({2, 8}), scale = torch::randn({2, 8});
  auto y = norm_modulate_reference(x, shift, scale, 1e-6);
  for (int b = 0; b < 2; ++b) {
    for (int t = 0; t < 3; ++t) {
      auto row = x[b][t];
      auto normed = row / torch::sqrt(row.pow(2).mean() + 1e-6);
      EXPECT_TRUE(torch::allclose(y[b][t], normed * (1 + scale[b]) + shift[b], 1e-5, 1e-6));
    }
  }
}

TEST(NormModulate, FusedMatchesReferenceValuesAndGradients) {
  torch::manual_seed(1);
  // Sizes that do not divide the thread grain, a width that is not a multiple of 8.
  auto x = torch::randn({5, 37, 24}) * 3, shift = torch::randn({5, 24}), scale = torch::randn({5, 24});
  auto dy = torch::randn({5, 37, 24});
  expect_same(run(norm_modulate, x, shift, scale, dy), run(norm_modulate_reference, x, shift, scale, dy));
}

TEST(NormModulate, AcceptsBroadcastShapeAndNonContiguousInputs) {
  torch::manual_seed(2);
  auto x = torch::randn({3, 16, 10}).transpose(0, 1).contiguous().transpose(0, 1);  // (3, 16, 10), strided
  ASSERT_FALSE(x.is_contiguous());
  auto mod = torch::randn({3, 6, 1, 10});  // as the block slices its six modulation vectors
  auto shift = mod.select(1, 0), scale = mod.select(1, 1);  // (3, 1, 10), non-contiguous
  auto dy = torch::randn({3, 16, 10});
  Grads fused = run(norm_modulate, x, shift, scale, dy);
  expect_same(fused, run(norm_modulate_reference, x, shift, scale, dy));
  EXPECT_EQ(fused.dscale.sizes(), (std::vector<int64_t>{3, 1, 10}));
}

TEST(NormModulate, NonFloatTakesTheReference) {
  auto x = torch::randn({2, 4, 8}, torch::kFloat64), shift = torch::randn({2, 8}, torch::kFloat64);
  auto y = norm_modulate(x, shift, shift, 1e-6);
  EXPECT_EQ(y.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(y, norm_modulate_reference(x, shift, shift, 1e-6)));
}

TEST(NormModulate, RejectsMismatchedShapes) {
  auto x = torch::randn({2, 4, 8});
  EXPECT_THROW(norm_modulate(x, torch::randn({2, 7}), torch::randn({2, 7}), 1e-6), reel::UserError);
  EXPECT_THROW(norm_modulate(x, torch::randn({3, 8}), torch::randn({3, 8}), 1e-6), reel::UserError);
  EXPECT_THROW(norm_modulate(x, torch::randn({2, 8}), torch::randn({2, 1, 8}), 1e-6), reel::UserError);
}
