// The temporal autoencoder: its parameter count against the built modules, its shapes for any
// frame count (one included), inflation (a fresh TAE without temporal compression treats frames
// independently), temporal tiling, the full-size model's forward and backward, bad options.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "common/error.h"
#include "model/tae.h"
#include "model_test_util.h"

using namespace reel::model;
using reel::testing::expect_user_error;

namespace {

int64_t numel_sum(torch::nn::Module& m) {
  int64_t total = 0;
  for (const auto& p : m.parameters()) total += p.numel();
  return total;
}

torch::Tensor pixels(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::rand(shape, gen) * 2 - 1;
}

// A few weights moved off their inflated start, so that time mixes.
void perturb(TaeModel& m, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.add_(torch::randn(p.sizes(), gen) * 0.02);
}

}  // namespace

TEST(Tae, ParamCountEqualsTheBuiltModules) {
  std::vector<TaeOptions> variants = {tae_tiny_options(), tae_full_options()};
  TaeOptions v = tae_tiny_options();
  v.attention = false;
  v.blocks = 2;
  v.compression = {1, 4, 2};
  v.latent_channels = 8;
  variants.push_back(v);
  for (const TaeOptions& o : variants) {
    TaeModel m(o);
    EXPECT_EQ(tae_param_count(o), numel_sum(*m));
  }
}

TEST(Tae, AnyFrameCountEncodesAndDecodesToItsShape) {
  TaeModel m(tae_tiny_options());
  m->init_weights(1);
  perturb(m, 2);
  torch::NoGradGuard no_grad;
  for (int64_t frames : {1, 4, 5, 8, 9}) {
    auto [mean, logvar] = m->encode(pixels({2, 3, frames, 16, 24}, 3));
    const int64_t latent_frames = (frames + 3) / 4;
    EXPECT_EQ(mean.sizes(), torch::IntArrayRef({2, 16, latent_frames, 4, 6})) << frames << " frames";
    EXPECT_EQ(logvar.sizes(), mean.sizes());
    auto shape = m->latent_shape(frames, 16, 24);
    EXPECT_EQ(shape[0], latent_frames);
    torch::Tensor x = m->decode(mean, frames);
    EXPECT_EQ(x.sizes(), torch::IntArrayRef({2, 3, frames, 16, 24})) << frames << " frames";
  }
  // Without a frame count, every latent frame decodes to compression-t frames.
  EXPECT_EQ(m->decode(torch::zeros({1, 16, 2, 4, 4})).size(2), 8);
  expect_user_error([&] { m->decode(torch::zeros({1, 16, 2, 4, 4}), 9); }, "9 frames encode to 3 latent frames");
  expect_user_error([&] { m->encode(torch::zeros({1, 3, 4, 18, 16})); }, "H a multiple of 4");
}

TEST(Tae, FreshTaeWithoutTemporalCompressionTreatsFramesAlone) {
  TaeOptions o = tae_tiny_options();
  o.compression = {1, 4, 4};
  TaeModel m(o);
  m->init_weights(5);
  torch::NoGradGuard no_grad;
  torch::Tensor clip = pixels({1, 3, 3, 8, 8}, 6);
  torch::Tensor whole = m->encode(clip).first;
  for (int64_t f = 0; f < 3; ++f) {
    torch::Tensor alone = m->encode(clip.narrow(2, f, 1)).first;
    EXPECT_TRUE(torch::allclose(whole.narrow(2, f, 1), alone, 1e-4, 1e-5)) << "frame " << f;
  }
  // So temporal tiling changes nothing: the overlaps blend equal values.
  torch::Tensor z = torch::randn({1, 16, 7, 2, 2});
  EXPECT_TRUE(torch::allclose(m->decode_tiled(z, 7, 3, 1), m->decode(z, 7), 1e-4, 1e-5));
}

TEST(Tae, TilingCoversEveryFrame) {
  TaeModel m(tae_tiny_options());
  m->init_weights(7);
  perturb(m, 8);
  torch::NoGradGuard no_grad;
  torch::Tensor clip = pixels({1, 3, 20, 8, 8}, 9);
  auto [mean, logvar] = m->encode_tiled(clip, 8);  // tiles of 8, 8, 4 frames
  EXPECT_EQ(mean.size(2), 5);
  EXPECT_TRUE(torch::allclose(mean.narrow(2, 2, 2), m->encode(clip.narrow(2, 8, 8)).first));
  torch::Tensor x = m->decode_tiled(mean, 20, 2, 1);
  EXPECT_EQ(x.sizes(), torch::IntArrayRef({1, 3, 20, 8, 8}));
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
  // Frames no tile overlaps are that tile's decode.
  EXPECT_TRUE(torch::allclose(x.narrow(2, 0, 4), m->decode(mean.narrow(2, 0, 2), 8).narrow(2, 0, 4), 1e-5, 1e-6));
  expect_user_error([&] { m->encode_tiled(clip, 6); }, "multiple of the temporal compression 4");
}

TEST(Tae, FullSizeRunsForwardAndBackwardOnA17FrameClip) {
  const TaeOptions o = tae_full_options();
  TaeModel m(o);
  m->init_weights(11);
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor clip = pixels({1, 3, 17, 64, 64}, 12);
  auto [mean, logvar] = m->encode(clip);
  EXPECT_EQ(mean.sizes(), torch::IntArrayRef({1, 16, 3, 8, 8}));  // 17 -> 9 -> 5 -> 3 frames
  torch::Tensor z = mean + torch::exp(0.5 * logvar) * torch::randn_like(mean);
  torch::Tensor x = m->decode(z, 17);
  EXPECT_EQ(x.sizes(), clip.sizes());
  (x - clip).abs().mean().backward();
  int64_t with_grad = 0;
  for (const auto& p : m->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
    with_grad += p.grad().abs().sum().item<double>() > 0;
  }
  EXPECT_GT(with_grad, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("full-size TAE (8x8x8, 16 latent channels, widths 128-256-512-512): %lld parameters; "
              "forward + backward of 17x64x64 in %.1f s\n",
              static_cast<long long>(tae_param_count(o)), seconds);
}

TEST(Tae, ImpossibleOptionsNameTheKey) {
  TaeOptions o = tae_tiny_options();
  o.compression = {3, 4, 4};
  expect_user_error([&] { check_tae_options(o); }, "model.tae.compression (t) = 3 must be a power of 2");
  o.compression = {4, 8, 4};
  expect_user_error([&] { check_tae_options(o); }, "needs 3 downsamplings but 3 levels");
  o = tae_tiny_options();
  o.channels = {32, 40};
  expect_user_error([&] { check_tae_options(o); }, "model.tae.channels[1] = 40");
}

TEST(TaeDiscriminator, GivesPatchLogitsForImagesAndClips) {
  TaeDiscriminator d(3, 16, 3);
  d->init_weights(13);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(d->forward(pixels({2, 3, 1, 32, 32}, 14)).sizes(), torch::IntArrayRef({2, 1, 1, 4, 4}));
  EXPECT_EQ(d->forward(pixels({2, 3, 8, 16, 24}, 15)).sizes(), torch::IntArrayRef({2, 1, 8, 2, 3}));
}

// Conv25d computes its temporal convolution as a k x 1 2D convolution over (B, C, T, H*W) after
// concatenating edge frames: the same values and gradients as the plain formulation,
// replicate-padded conv3d with the module's own weights, for stride 1 and 2 in time.
TEST(Tae, Conv25dEqualsReplicatePaddedConv3d) {
  namespace F = torch::nn::functional;
  torch::manual_seed(3);
  for (int64_t stride : {1, 2}) {
    Conv25d conv(5, 6, 3, std::array<int64_t, 3>{stride, 1, 1});
    for (auto& p : conv->parameters()) p.data().normal_(0, 0.3);
    const torch::Tensor x = torch::randn({2, 5, 5, 4, 3}, torch::requires_grad());
    const torch::Tensor y = conv->forward(x);
    const torch::Tensor h = conv->spatial(x);
    const torch::Tensor ref = torch::conv3d(F::pad(h, F::PadFuncOptions({0, 0, 0, 0, 1, 1}).mode(torch::kReplicate)),
                                            conv->temporal->weight, conv->temporal->bias, {stride, 1, 1});
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_LT((y - ref).abs().max().item<float>(), 1e-5);
    const torch::Tensor g = torch::randn_like(y);
    const auto gy = torch::autograd::grad({y}, {x, conv->temporal->weight}, {g});
    const auto gr = torch::autograd::grad({ref}, {x, conv->temporal->weight}, {g});
    EXPECT_LT((gy[0] - gr[0]).abs().max().item<float>(), 1e-4);
    EXPECT_LT((gy[1] - gr[1]).abs().max().item<float>(), 1e-4);
  }
}
