// Byte tokenizer, byte encoder and text conditioner: ids, truncation, padding, slots, freezing.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/init.h"
#include "model/text_conditioner.h"
#include "model/text_encoder.h"
#include "model_test_util.h"

using namespace reel::model;
using reel::model::testing::contains;

TEST(ByteTokenize, FramesBytesWithBosEosAndPadsToLongest) {
  auto ids = byte_tokenize({"ab", ""}, 96);
  ASSERT_EQ(ids.ids.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_TRUE(torch::equal(ids.ids[0], torch::tensor({kByteBos, int64_t{'a'}, int64_t{'b'}, kByteEos})));
  EXPECT_TRUE(torch::equal(ids.ids[1], torch::tensor({kByteBos, kByteEos, kBytePad, kBytePad})));
  EXPECT_TRUE(torch::equal(ids.mask[0], torch::tensor({true, true, true, true})));
  EXPECT_TRUE(torch::equal(ids.mask[1], torch::tensor({true, true, false, false})));
}

TEST(ByteTokenize, TruncatesToMaxLenAtCharacterBoundary) {
  auto ids = byte_tokenize({"abcdef"}, 4);
  EXPECT_TRUE(torch::equal(ids.ids[0], torch::tensor({kByteBos, int64_t{'a'}, int64_t{'b'}, int64_t{'c'}, int64_t{'d'}, kByteEos})));
  // "a" + U+00E9 (0xC3 0xA9): a 2-byte cut would split the character, so only "a" stays.
  auto utf8 = byte_tokenize({"a\xC3\xA9"}, 2);
  EXPECT_TRUE(torch::equal(utf8.ids[0], torch::tensor({kByteBos, int64_t{'a'}, kByteEos})));
  auto whole = byte_tokenize({"a\xC3\xA9"}, 3);
  EXPECT_TRUE(torch::equal(whole.ids[0], torch::tensor({kByteBos, int64_t{'a'}, int64_t{0xC3}, int64_t{0xA9}, kByteEos})));
}

TEST(ByteTextEncoder, PaddingInBatchDoesNotChangeRealTokens) {
  for (int64_t ngram : {0, 5}) {
    SCOPED_TRACE(ngram);
    ByteTextEncoderOptions o{16, 2, 2, 32};
    o.ngram = ngram;  // the convolution's window reaches into the padding: it must read zeros
    ByteTextEncoder enc(o);
    auto gen = make_init_generator(3);
    enc->init_weights(gen);
    auto alone = enc->forward({"red ball"});
    auto batched = enc->forward({"red ball", "a much longer caption about a blue cube", ""});
    int64_t l = alone.tokens.size(1);
    ASSERT_EQ(l, 10);
    ASSERT_GT(batched.tokens.size(1), l);
    EXPECT_TRUE(torch::allclose(batched.tokens[0].slice(0, 0, l), alone.tokens[0], 1e-5, 1e-5));
    EXPECT_FALSE(batched.mask[0][l].item<bool>());
    EXPECT_EQ(batched.mask[2].sum().item<int64_t>(), 2);  // "" is BOS, EOS
    EXPECT_TRUE(torch::isfinite(batched.tokens).all().item<bool>());
  }
}

TEST(ByteTextEncoder, NgramSeesNeighbouringBytesOnly) {
  // Layers off the path: one layer whose attention and MLP outputs are zeroed, so a token's
  // output is final_norm(conv(e) + e + pos) and depends on its +-1 neighbours only.
  ByteTextEncoderOptions o{16, 1, 2, 32};
  o.ngram = 3;
  ByteTextEncoder enc(o);
  auto gen = make_init_generator(4);
  enc->init_weights(gen);
  torch::NoGradGuard no_grad;
  auto& layer = enc->layer_list()[0];
  for (auto& p : layer->attn->out->parameters()) p.zero_();
  for (auto& p : layer->mlp->fc2->parameters()) p.zero_();
  auto a = enc->forward({"move left"}).tokens[0], b = enc->forward({"move lift"}).tokens[0];
  // "left" vs "lift": byte 6 of the text (token 7 after BOS) differs; only tokens 6..8 see it.
  for (int64_t i = 0; i < a.size(0); ++i) {
    bool near = i >= 6 && i <= 8;
    EXPECT_EQ(torch::allclose(a[i], b[i], 1e-6, 1e-6), !near) << "token " << i;
  }
}

TEST(ByteTextEncoder, BadOptionsNameTheField) {
  try {
    ByteTextEncoder enc(ByteTextEncoderOptions{16, 1, 3, 8});
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "heads = 3")) << e.what();
  }
  EXPECT_THROW(ByteTextEncoder(ByteTextEncoderOptions{16, 1, 2, 0}), reel::UserError);
  try {
    ByteTextEncoderOptions o{16, 1, 2, 8};
    o.ngram = 4;
    ByteTextEncoder enc(o);
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "ngram = 4")) << e.what();
  }
}

TEST(TextConditioner, ConcatenatesSlotsAtModelWidth) {
  TextEncoderSlotOptions a, b;
  a.name = "small";
  a.encoder = TextEncoderOptions{8, 1, 2, 4};
  b.name = "wide";
  b.encoder = TextEncoderOptions{16, 1, 4, 32};
  TextConditioner cond(std::vector<TextEncoderSlotOptions>{a, b}, 24);
  auto gen = make_init_generator(1);
  cond->init_weights(gen);
  auto out = cond->forward({"abcdefgh", "xy"});
  // slot a truncates to 4 bytes -> 6 tokens; slot b keeps 8 bytes -> 10 tokens.
  ASSERT_EQ(out.tokens.sizes(), (std::vector<int64_t>{2, 16, 24}));
  EXPECT_TRUE(torch::equal(out.mask[1], torch::tensor({true, true, true, true, false, false, true, true, true, true,
                                                       false, false, false, false, false, false})));
  // Each slot ends in its own LayerNorm (weight 1, bias 0): every token has ~zero mean over D.
  EXPECT_LT(out.tokens.mean(-1).abs().max().item<float>(), 1e-4);
}

namespace {

// Two byte slots, "frozen" (trainable: false) and "live", into width 12, initialised from `seed`.
TextConditioner frozen_and_live(uint64_t seed) {
  TextEncoderSlotOptions frozen, live;
  frozen.name = "frozen";
  frozen.trainable = false;
  frozen.encoder = TextEncoderOptions{8, 1, 2, 16};
  live.name = "live";
  live.encoder = TextEncoderOptions{8, 1, 2, 16};
  TextConditioner cond(std::vector<TextEncoderSlotOptions>{frozen, live}, 12);
  auto gen = make_init_generator(seed);
  cond->init_weights(gen);
  return cond;
}

}  // namespace

TEST(TextConditioner, FrozenSlotGetsNoGradientButItsProjectionDoes) {
  TextConditioner cond = frozen_and_live(2);
  auto out = cond->forward({"hello"});
  (out.tokens * torch::randn_like(out.tokens)).sum().backward();
  for (const auto& p : cond->named_parameters()) {
    bool frozen_encoder = p.key().rfind("frozen.encoder.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), !frozen_encoder) << p.key();
    if (frozen_encoder) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    } else {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}

TEST(TextConditioner, GivenEncoderOutputsStandInForFrozenSlotsOnly) {
  TextConditioner cond = frozen_and_live(4);
  const std::vector<std::string> texts = {"hello", "a longer text", ""};
  const TextTokens direct = cond->forward(texts);
  TextTokens encoded;
  {
    torch::NoGradGuard no_grad;
    encoded = cond->slot("frozen")->encode(texts);
  }
  const TextTokens given = cond->forward(texts, {{"frozen", encoded}});
  EXPECT_TRUE(torch::equal(given.tokens, direct.tokens));
  EXPECT_TRUE(torch::equal(given.mask, direct.mask));
  // Other encoder outputs give other tokens: the given ones are used, not recomputed.
  const TextTokens other = cond->forward(texts, {{"frozen", {encoded.tokens.flip(0), encoded.mask}}});
  EXPECT_FALSE(torch::equal(other.tokens, direct.tokens));
  try {
    cond->forward(texts, {{"live", cond->slot("live")->encode(texts)}});
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "text slot 'live' is trainable")) << e.what();
  }
  try {
    cond->slot("nope");
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "no text slot named 'nope'; this model's slots: frozen, live")) << e.what();
  }
}

TEST(TextConditioner, BadSlotsAreUserErrors) {
  TextEncoderSlotOptions s;
  s.type = "gpt";
  try {
    TextConditioner(std::vector<TextEncoderSlotOptions>{s}, 16);
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_TRUE(contains(e.what(), "type = 'gpt'")) << e.what();
  }
  TextEncoderSlotOptions a;
  EXPECT_THROW(TextConditioner(std::vector<TextEncoderSlotOptions>{a, a}, 16), reel::UserError);
  EXPECT_THROW(TextConditioner(std::vector<TextEncoderSlotOptions>{}, 16), reel::UserError);
}
