// The video transformer: shapes, identity at init, key padding, gradient flow, shape errors.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/init.h"
#include "model/registry.h"
#include "model/t2v.h"
#include "model_test_util.h"

using namespace reel::model;
using namespace reel::model::testing;

namespace {

T2VModel make_small(uint64_t seed, bool perturb, bool with_text_extras = false) {
  T2VModel model(small_options(with_text_extras));
  model->init_weights(seed);
  if (perturb) perturb_zero_params(*model, seed + 100);
  return model;
}

}  // namespace

TEST(VideoTransformer, OutputShapeEqualsInputForVideoAndOneFrame) {
  T2VModel model(find_size(find_model("t2v"), "tiny"));
  model->init_weights(0);
  perturb_zero_params(*model, 1);
  torch::NoGradGuard no_grad;
  for (auto shape : {std::vector<int64_t>{2, 3, 8, 16, 16}, std::vector<int64_t>{2, 3, 1, 16, 16},
                     std::vector<int64_t>{1, 3, 4, 16, 24}}) {
    auto x = torch::randn(shape);
    std::vector<std::string> captions(shape[0], "FPS-8 a red ball");
    auto v = model->forward(x, torch::rand({shape[0]}), captions);
    EXPECT_EQ(v.sizes(), x.sizes());
    EXPECT_TRUE(torch::isfinite(v).all().item<bool>());
  }
}

TEST(VideoTransformer, FramesPatchTDoesNotDivideArePaddedByReplication) {
  T2VOptions o = small_options();
  o.transformer.patch = {2, 2, 2};
  T2VModel model(o);
  model->init_weights(3);
  perturb_zero_params(*model, 4);
  torch::NoGradGuard no_grad;
  auto t = torch::tensor({0.3f, 0.8f});
  for (int64_t frames : {1, 3}) {
    auto x = torch::randn({2, 3, frames, 8, 8});
    auto v = model->forward(x, t, {"a red ball", ""});
    ASSERT_EQ(v.sizes(), x.sizes());
    // The same as the model on the explicitly padded clip, its last output frame dropped.
    auto padded = torch::cat({x, x.narrow(2, frames - 1, 1)}, 2);
    auto full = model->forward(padded, t, {"a red ball", ""});
    EXPECT_TRUE(torch::allclose(v, full.narrow(2, 0, frames), 1e-5, 1e-6)) << frames;
    // and not what the model makes of the clip padded with zeros.
    auto zero_padded = torch::cat({x, torch::zeros_like(x.narrow(2, 0, 1))}, 2);
    EXPECT_FALSE(torch::allclose(v, model->forward(zero_padded, t, {"a red ball", ""}).narrow(2, 0, frames), 1e-3, 1e-3));
  }
}

TEST(VideoTransformer, ZeroInitGivesZeroVelocityAndIdentityBlocks) {
  auto model = make_small(5, /*perturb=*/false);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 2, 8, 8});
  auto v = model->forward(x, torch::tensor({0.1f, 0.9f}), {"a red ball", ""});
  EXPECT_EQ(v.abs().max().item<float>(), 0.0f);

  auto text = model->encode_text({"a red ball", "a blue cube"});
  auto h = torch::randn({2, 16, 32});
  auto shared_mod = torch::zeros({2, 6, 32});  // what the zero-initialised shared adaLN produces
  for (auto block : model->transformer->block_list()) {
    // The gated self-attention and FFN add nothing; only the (ungated) cross-attention does.
    auto cross = block->cross(block->cross_norm(h), text.tokens, text.mask);
    EXPECT_GT(cross.abs().max().item<float>(), 0.0f);
    EXPECT_TRUE(torch::allclose(block->forward(h, shared_mod, text), h + cross, 1e-6, 1e-6));
  }
}

TEST(VideoTransformer, PositionsAreAddedBeforeEveryBlock) {
  auto model = make_small(9, /*perturb=*/false);  // adaLN outputs are 0
  auto& tr = model->transformer;
  torch::NoGradGuard no_grad;
  for (auto block : tr->block_list()) block->cross->out->weight.zero_();  // blocks become identities
  tr->patch_embed->bias.normal_();  // a zero video then embeds to this bias at every token
  tr->final->linear->weight.normal_();
  auto v = model->forward(torch::zeros({1, 3, 2, 8, 8}), torch::tensor({0.5f}), {"a"});
  // depth = 2 blocks, so the final layer sees bias + 2 * pos; its adaLN is still zero.
  auto h = tr->patch_embed->bias + 2 * tr->pos_embed(Grid3{2, 4, 4});  // (N, D)
  auto tokens = tr->final->linear(rms_norm(h, 1e-6)).unsqueeze(0);   // (1, N, 12)
  EXPECT_TRUE(torch::allclose(v, unpatchify(tokens, {1, 2, 2}, 3, 2, 8, 8), 1e-5, 1e-6));
}

TEST(VideoTransformer, TextPaddingDoesNotChangeOutput) {
  for (bool extras : {false, true}) {
    SCOPED_TRACE(extras ? "with ngram and pooled_text" : "plain");
    auto model = make_small(6, /*perturb=*/true, extras);
    torch::NoGradGuard no_grad;
    auto x = torch::randn({1, 3, 2, 8, 8});
    auto t = torch::tensor({0.3f});
    auto text = model->encode_text({"a red ball"});
    // Extra junk tokens with mask = false.
    TextTokens padded{torch::cat({text.tokens, 10 * torch::randn({1, 5, 32})}, 1),
                      torch::cat({text.mask, torch::zeros({1, 5}, torch::kBool)}, 1)};
    auto a = model->forward_with_text(x, t, text);
    auto b = model->forward_with_text(x, t, padded);
    EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
    // Through the whole model: a short caption padded by a longer one in the same batch.
    auto batched =
        model->forward(torch::cat({x, x}), torch::cat({t, t}), {"a red ball", "a much longer caption here"});
    EXPECT_TRUE(torch::allclose(batched[0], a[0], 1e-5, 1e-6));
    // And the mask matters: unmasking the junk does change the output.
    padded.mask.fill_(true);
    EXPECT_FALSE(torch::allclose(a, model->forward_with_text(x, t, padded), 1e-4, 1e-5));
  }
}

TEST(VideoTransformer, PooledTextReachesTheModulation) {
  auto model = make_small(8, /*perturb=*/true, /*with_text_extras=*/true);
  auto& tr = model->transformer;
  ASSERT_TRUE(tr->text_pool);
  EXPECT_FALSE(make_small(8, /*perturb=*/true)->transformer->text_pool);  // off by default
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 2, 8, 8});
  auto t = torch::tensor({0.4f});
  auto text = model->encode_text({"a red ball"});
  auto before = model->forward_with_text(x, t, text);
  // Only the pooled path changes: the text tokens and hence cross-attention stay the same.
  tr->text_pool->bias.add_(1.0);
  EXPECT_FALSE(torch::allclose(before, model->forward_with_text(x, t, text), 1e-4, 1e-5));
  tr->text_pool->bias.sub_(1.0);
  EXPECT_TRUE(torch::allclose(before, model->forward_with_text(x, t, text), 1e-5, 1e-6));
}

TEST(VideoTransformer, GradientsReachTextEncoderAndEveryBlock) {
  for (bool extras : {false, true}) {
    SCOPED_TRACE(extras ? "with ngram and pooled_text" : "plain");
    auto model = make_small(7, /*perturb=*/true, extras);
    auto x = torch::randn({2, 3, 2, 8, 8});
    auto v = model->forward(x, torch::tensor({0.2f, 0.7f}), {"FPS-8 a red ball", "FPS-8 a green cone"});
    torch::mse_loss(v, torch::randn_like(v)).backward();
    int64_t checked = 0, text_params = 0, block_params = 0;
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
      EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
      ++checked;
      text_params += p.key().rfind("text.byte.encoder.", 0) == 0;
      block_params += p.key().rfind("transformer.blocks.1.", 0) == 0;
    }
    EXPECT_EQ(checked, static_cast<int64_t>(model->parameters().size()));
    EXPECT_GT(text_params, 0);
    EXPECT_GT(block_params, 0);
    EXPECT_EQ(model->named_parameters().contains("transformer.text_pool.weight"), extras);
    EXPECT_EQ(model->named_parameters().contains("text.byte.encoder.ngram.weight"), extras);
  }
}

TEST(VideoTransformer, ShapeErrorsNameTheShape) {
  auto model = make_small(8, false);
  auto t = torch::tensor({0.5f});
  try {
    model->forward(torch::zeros({1, 3, 5, 8, 8}), t, {"x"});  // 5 frames > max_grid t = 4
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "[1, 3, 5, 8, 8]")) << e.what();
    EXPECT_TRUE(contains(e.what(), "max_grid")) << e.what();
  }
  try {
    model->forward(torch::zeros({1, 3, 2, 8, 7}), t, {"x"});  // W = 7 not a multiple of 2
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "[1, 3, 2, 8, 7]")) << e.what();
  }
  EXPECT_THROW(model->forward(torch::zeros({1, 4, 2, 8, 8}), t, {"x"}), reel::UserError);  // channels
  EXPECT_THROW(model->forward(torch::zeros({2, 3, 2, 8, 8}), torch::rand({2}), {"x"}), reel::UserError);
}

TEST(VideoTransformer, BadOptionsNameTheField) {
  VideoTransformerOptions o;
  o.heads = 3;
  try {
    VideoTransformer m(o);
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "heads = 3")) << e.what();
  }
  o = VideoTransformerOptions{};
  o.patch = {1, 0, 2};
  EXPECT_THROW(VideoTransformer{o}, reel::UserError);
  o = VideoTransformerOptions{};
  o.time_freq_dim = 7;
  EXPECT_THROW(VideoTransformer{o}, reel::UserError);
}

TEST(VideoTransformer, FrameTimeGivesEachFrameItsOwnNoiseLevel) {
  T2VOptions o = small_options();
  o.transformer.frame_time = true;
  o.transformer.qk_norm = true;
  T2VModel model(o);
  model->init_weights(5);
  perturb_zero_params(*model, 6);  // frame_time_proj too: it starts at zero
  torch::NoGradGuard no_grad;
  const std::vector<std::string> captions = {"a red ball", "a blue square"};
  torch::Tensor x = torch::randn({2, 3, 4, 8, 8}), t = torch::tensor({0.3f, 0.8f});
  torch::Tensor per_frame = t.unsqueeze(1).expand({2, 4}).contiguous();
  torch::Tensor v = model->forward(x, t, captions);
  // A clip's t is every frame's t.
  EXPECT_TRUE(torch::allclose(model->forward(x, per_frame, captions), v, 1e-5, 1e-6));
  // One frame's own level changes its clip's output, not the other clip's.
  per_frame[0][2] = 0.9f;
  torch::Tensor moved = model->forward(x, per_frame, captions);
  EXPECT_FALSE(torch::allclose(moved[0], v[0], 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(moved[1], v[1], 1e-5, 1e-6));
  // Frames padded up to patch t take the last frame's level.
  o.transformer.patch = {2, 2, 2};
  T2VModel pairs(o);
  pairs->init_weights(7);
  perturb_zero_params(*pairs, 8);
  torch::Tensor three = x.narrow(2, 0, 3);
  EXPECT_EQ(pairs->forward(three, per_frame.narrow(1, 0, 3), captions).sizes(), three.sizes());
  // Without frame_time a level per frame is refused.
  T2VModel plain(small_options());
  EXPECT_THROW(plain->forward(x, per_frame, captions), reel::UserError);
}

TEST(VideoTransformer, FractionalPositionsOnlyChangeFramesNarrowerThanTheTables) {
  T2VOptions o = small_options();
  T2VModel absolute(o);
  o.transformer.fractional_positions = true;
  T2VModel fractional(o);
  absolute->init_weights(3);
  fractional->init_weights(3);
  perturb_zero_params(*absolute, 4);
  perturb_zero_params(*fractional, 4);
  torch::NoGradGuard no_grad;
  const std::vector<std::string> captions = {"a red ball"};
  const Grid3 max_grid = o.transformer.max_grid;
  const auto& p = o.transformer.patch;
  torch::Tensor t = torch::tensor({0.4f});
  // A clip as large as the tables: the same rows, the same output.
  torch::Tensor full = torch::randn({1, 3, p[0], max_grid[1] * p[1], max_grid[2] * p[2]});
  EXPECT_TRUE(torch::equal(absolute->forward(full, t, captions), fractional->forward(full, t, captions)));
  // Half the width: interpolated rows, another output.
  torch::Tensor half = full.narrow(4, 0, max_grid[2] * p[2] / 2);
  EXPECT_FALSE(torch::allclose(absolute->forward(half, t, captions), fractional->forward(half, t, captions)));
}
