// Analytic parameter counts and FLOPs agree with the built modules and with hand computation.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/counts.h"
#include "model/registry.h"
#include "model_test_util.h"

using namespace reel::model;
using reel::model::testing::contains;

namespace {

int64_t numel_sum(torch::nn::Module& m) {
  int64_t total = 0;
  for (const auto& p : m.parameters()) total += p.numel();
  return total;
}

}  // namespace

TEST(ParamCount, TinyEqualsNumelOfBuiltModel) {
  const auto& spec = find_model("t2v");
  const auto& tiny = find_size(spec, "tiny");
  auto model = spec.build(tiny);
  EXPECT_EQ(param_count(tiny), numel_sum(*model));
  EXPECT_EQ(spec.param_count(tiny), numel_sum(*model));
  EXPECT_EQ(video_transformer_param_count(tiny.transformer), numel_sum(*model->transformer));
  EXPECT_EQ(text_conditioner_param_count(tiny.text, tiny.transformer.dim), numel_sum(*model->text));
}

TEST(ParamCount, OddConfigEqualsNumelOfBuiltModel) {
  T2VOptions o;
  o.transformer.in_channels = 4;
  o.transformer.patch = {2, 2, 1};
  o.transformer.dim = 48;
  o.transformer.depth = 3;
  o.transformer.heads = 3;
  o.transformer.ffn_dim = 100;
  o.transformer.max_grid = {3, 5, 7};
  o.transformer.time_freq_dim = 64;
  TextEncoderSlotOptions a, b;
  a.name = "bytes_a";
  a.encoder = TextEncoderOptions{24, 2, 3, 40};
  b.name = "bytes_b";
  b.encoder = TextEncoderOptions{20, 1, 5, 7};
  b.trainable = false;
  o.text = {a, b};
  T2VModel model(o);
  EXPECT_EQ(param_count(o), numel_sum(*model));
  // The default SwiGLU width changes the count too.
  o.transformer.ffn_dim = 0;
  T2VModel model_default_ffn(o);
  EXPECT_EQ(param_count(o), numel_sum(*model_default_ffn));
  // So do the byte n-gram convolution (one slot) and the pooled text projection.
  o.text[0].encoder.ngram = 5;
  o.transformer.pooled_text = true;
  T2VModel model_extras(o);
  EXPECT_EQ(param_count(o), numel_sum(*model_extras));
  EXPECT_EQ(param_count(o), numel_sum(*model_default_ffn) + 5 * 24 * 24 + 48 * 48 + 48);
  // A per-frame noise-level projection adds D x D + D; QK-norm has no weights.
  o.transformer.frame_time = true;
  o.transformer.qk_norm = true;
  T2VModel model_frame_time(o);
  EXPECT_EQ(param_count(o), numel_sum(*model_frame_time));
  EXPECT_EQ(param_count(o), numel_sum(*model_extras) + 48 * 48 + 48);
}

TEST(ParamCount, MovieGen30bTransformerIsAbout30B) {
  const auto& big = find_size(find_model("t2v"), "30b");
  EXPECT_EQ(resolved_ffn_dim(big.transformer), 16384);
  EXPECT_EQ(big.transformer.dim / big.transformer.heads, 128);
  int64_t n = video_transformer_param_count(big.transformer);  // formula only: nothing is allocated
  EXPECT_GE(n, 28'000'000'000);
  EXPECT_LE(n, 31'000'000'000);
}

TEST(ParamCount, SwigluDefaultWidth) {
  EXPECT_EQ(swiglu_hidden_dim(128), 352);
  EXPECT_EQ(swiglu_hidden_dim(6144), 16384);
  EXPECT_EQ(swiglu_hidden_dim(32), 96);  // ceil(85.3) = 86 -> 96
}

TEST(Flops, MatchesHandComputationForTinyConfig) {
  T2VOptions o;
  o.transformer.in_channels = 2;
  o.transformer.patch = {1, 2, 2};  // P = 8
  o.transformer.dim = 16;           // D
  o.transformer.depth = 1;
  o.transformer.heads = 2;
  o.transformer.ffn_dim = 32;       // F
  o.transformer.time_freq_dim = 8;
  TextEncoderSlotOptions slot;
  slot.encoder = TextEncoderOptions{8, 1, 2, 8};  // De = 8
  o.text = {slot};
  const int64_t N = 4, L = 3;
  auto f = t2v_forward_flops(o, N, L);
  // Per video token: patch embed 8*16 + qkv 16*48 + out 16*16 + cross q 16*16 + cross out 16*16
  // + w13 16*64 + w2 32*16 + final linear 16*8.
  double w_video = 128 + 768 + 256 + 256 + 256 + 1024 + 512 + 128;  // 3328
  EXPECT_DOUBLE_EQ(f.matmul_params_per_token, w_video);
  // Per sample: time MLP 8*16 + 16*16, shared adaLN 16*96, final adaLN 16*32.
  double w_sample = 128 + 256 + 1536 + 512;
  // Per text token: encoder qkv 8*24 + out 8*8 + mlp 8*32 + 32*8, projection 8*16, cross K/V 16*32.
  double w_text_token = 192 + 64 + 256 + 256 + 128 + 512;
  double linear = 2 * (w_video * N + w_sample + w_text_token * L);
  // Self-attention 4*N^2*D, cross-attention 4*N*L*D, text self-attention 4*L^2*De.
  double attn = 4 * 16 * 16 + 4 * 4 * 3 * 16 + 4 * 9 * 8;
  EXPECT_DOUBLE_EQ(f.forward_flops, linear + attn);
  EXPECT_DOUBLE_EQ(f.forward_flops, 42016.0);
  // A width-3 n-gram convolution: 3*De^2 more weights per text token; pooled text: D^2 per sample.
  o.text[0].encoder.ngram = 3;
  o.transformer.pooled_text = true;
  EXPECT_DOUBLE_EQ(t2v_forward_flops(o, N, L).forward_flops, 42016.0 + 2 * (3 * 64 * L + 256));
  EXPECT_DOUBLE_EQ(t2v_forward_flops(o, N, L).frozen_text_flops, 0.0);
  // A frozen encoder (n-gram, qkv, out, MLP; not its projection) runs forward only.
  o.text[0].trainable = false;
  EXPECT_DOUBLE_EQ(t2v_forward_flops(o, N, L).frozen_text_flops, 2 * (3 * 64 + 192 + 64 + 256 + 256) * L + 4 * 9 * 8);
}

TEST(Flops, PerTokenWeightsAreTheLinearsVideoTokensPassThrough) {
  const auto& tiny = find_size(find_model("t2v"), "tiny");
  T2VModel model(tiny);
  double touched = 0;
  for (const auto& p : model->named_parameters()) {
    const auto& name = p.key();
    bool per_token = name == "transformer.patch_embed.weight" || name == "transformer.final.linear.weight";
    for (const char* suffix : {"attn.qkv.weight", "attn.out.weight", "cross.q.weight", "cross.out.weight",
                               "ffn.w13.weight", "ffn.w2.weight"}) {
      per_token |= contains(name, "transformer.blocks.") && contains(name, suffix);
    }
    if (per_token) touched += static_cast<double>(p.value().numel());
  }
  EXPECT_DOUBLE_EQ(t2v_forward_flops(tiny, 512, 40).matmul_params_per_token, touched);
  // Twice the tokens: linear terms double, self-attention quadruples, so more than 2x.
  EXPECT_GT(t2v_forward_flops(tiny, 1024, 40).forward_flops, 2 * t2v_forward_flops(tiny, 512, 40).forward_flops);
}

TEST(Registry, KnowsT2vAndListsNamesForUnknown) {
  auto names = model_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "t2v"), names.end());
  try {
    find_model("sora");
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "'sora'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "t2v")) << e.what();
  }
  try {
    find_size(find_model("t2v"), "huge");
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "30b, tiny")) << e.what();
  }
  const auto& tiny = find_size(find_model("t2v"), "tiny");
  EXPECT_EQ(tiny.transformer.dim, 128);
  EXPECT_EQ(tiny.transformer.depth, 4);
  EXPECT_EQ(tiny.text.size(), 1u);
}
