// The text-encoder types of model/text_encoder_types.h: tokenizers, quoted-text routing, parameter
// counts, and that each encoder's features of a text do not depend on the batch around it.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/counts.h"
#include "model/init.h"
#include "model/registry.h"
#include "model/text_conditioner.h"
#include "model/text_encoder_types.h"
#include "model_test_util.h"

namespace reel::model {
namespace {

using reel::model::testing::contains;

std::shared_ptr<TextEncoderBase> built(const std::string& type, const TextEncoderOptions& o, uint64_t seed = 1) {
  auto enc = make_text_encoder(type, o);
  auto gen = make_init_generator(seed);
  enc->init_weights(gen);
  enc->eval();
  return enc;
}

int64_t numel(const std::shared_ptr<TextEncoderBase>& enc) {
  int64_t n = 0;
  for (const auto& p : enc->parameters()) n += p.numel();
  return n;
}

// Small sizes of each type; the T5 types with head_dim * heads != dim and their own ffn_dim.
std::vector<std::pair<std::string, TextEncoderOptions>> small_types() {
  return {{"byte", TextEncoderOptions{16, 2, 2, 24, 3}},
          {"byt5", TextEncoderOptions{24, 2, 3, 20, 0, 40, 6, 0}},
          {"ul2", TextEncoderOptions{16, 2, 2, 12, 0, 36, 12, 500}},
          {"metaclip", TextEncoderOptions{16, 2, 4, 12, 0, 0, 0, 300}}};
}

TEST(TextEncoderTypes, ParameterCountsMatchTheBuiltEncoders) {
  for (const auto& [type, o] : small_types()) {
    EXPECT_EQ(text_encoder_param_count(type, o), numel(built(type, o))) << type;
  }
  // The published vocabularies are the defaults.
  EXPECT_EQ(resolved("ul2", {}).vocab, 32128);
  EXPECT_EQ(resolved("metaclip", {}).vocab, 49408);
  EXPECT_EQ(resolved("byt5", {}).vocab, 384);
  EXPECT_EQ(numel(built("byt5", TextEncoderOptions{8, 1, 2, 8})), text_encoder_param_count("byt5", {8, 1, 2, 8}));
}

TEST(TextEncoderTypes, FeaturesOfATextDoNotDependOnTheBatch) {
  const std::vector<std::string> alone = {"a red circle"};
  const std::vector<std::string> batch = {"a much longer caption, with punctuation!", "a red circle", ""};
  for (const auto& [type, o] : small_types()) {
    auto enc = built(type, o);
    torch::NoGradGuard no_grad;
    TextTokens a = enc->forward(alone), b = enc->forward(batch);
    const int64_t n = a.mask[0].sum().item<int64_t>();
    EXPECT_EQ(b.mask[1].sum().item<int64_t>(), n) << type;
    EXPECT_TRUE(torch::allclose(a.tokens[0].narrow(0, 0, n), b.tokens[1].narrow(0, 0, n), 1e-5, 1e-6)) << type;
    EXPECT_GE(b.mask[2].sum().item<int64_t>(), 1) << type;  // "" still has its specials
    EXPECT_EQ(b.tokens.size(2), o.dim) << type;
    EXPECT_TRUE(torch::isfinite(b.tokens).all().item<bool>()) << type;
    EXPECT_EQ(token_count(type, o, batch[0]), b.mask[0].sum().item<int64_t>()) << type;
  }
}

TEST(TextEncoderTypes, MetaclipIsCausalAndT5IsBidirectional) {
  const std::vector<std::string> texts = {"a red circle moving left", "a red circle moving right"};
  for (const std::string type : {"metaclip", "ul2"}) {
    auto enc = built(type, type == "ul2" ? TextEncoderOptions{16, 2, 2, 12, 0, 36, 12, 500}
                                         : TextEncoderOptions{16, 2, 4, 12, 0, 0, 0, 300});
    torch::NoGradGuard no_grad;
    TextTokens out = enc->forward(texts);
    // Tokens before the last word: "a red circle moving" (+ BOS for metaclip).
    const int64_t before = type == "metaclip" ? 5 : 4;
    const bool same_prefix = torch::allclose(out.tokens[0].narrow(0, 0, before), out.tokens[1].narrow(0, 0, before));
    EXPECT_EQ(same_prefix, type == "metaclip") << type << ": a later word reaches earlier tokens only bidirectionally";
  }
}

TEST(TextEncoderTypes, Tokenizers) {
  // ByT5: byte + 3, then EOS (1); padding 0; cut at a character boundary, EOS kept.
  TokenIds b = byt5_tokenize({"Hi", "\xC3\xA9t\xC3\xA9"}, 4);  // "été" is 5 bytes, room for 3
  EXPECT_TRUE(torch::equal(b.ids[0], torch::tensor({'H' + 3, 'i' + 3, 1, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b.ids[1], torch::tensor({0xC3 + 3, 0xA9 + 3, 't' + 3, 1}, torch::kInt64)));
  EXPECT_EQ(b.mask[0].sum().item<int64_t>(), 3);

  // Words: punctuation is its own token; ul2 keeps case, metaclip lower-cases and starts with BOS (2).
  TokenIds u = word_tokenize({"Red, red!"}, 1000, 16, false, false);
  ASSERT_EQ(u.ids.size(1), 5);  // Red , red ! EOS
  EXPECT_NE(u.ids[0][0].item<int64_t>(), u.ids[0][2].item<int64_t>());
  EXPECT_EQ(u.ids[0][4].item<int64_t>(), 1);
  TokenIds m = word_tokenize({"Red, red!"}, 1000, 16, true, true);
  ASSERT_EQ(m.ids.size(1), 6);  // BOS red , red ! EOS
  EXPECT_EQ(m.ids[0][0].item<int64_t>(), 2);
  EXPECT_EQ(m.ids[0][1].item<int64_t>(), m.ids[0][3].item<int64_t>());
  EXPECT_TRUE((u.ids.narrow(1, 0, 4) >= 3).all().item<bool>());  // words never take a special id
  EXPECT_TRUE((u.ids < 1000).all().item<bool>());
  // Truncation keeps the end token: at most max_len tokens.
  TokenIds t = word_tokenize({"one two three four five six"}, 1000, 4, true, true);
  EXPECT_EQ(t.ids.size(1), 4);
  EXPECT_EQ(t.ids[0][3].item<int64_t>(), 1);
  EXPECT_EQ(token_count("metaclip", {16, 1, 4, 4}, "one two three four five six"), 4);
}

TEST(TextEncoderTypes, QuotedText) {
  EXPECT_EQ(quoted_text("a sign that says \"OPEN\" in red"), "OPEN");
  EXPECT_EQ(quoted_text("\"A\" and \"B C\""), "A B C");
  EXPECT_EQ(quoted_text("curly \xE2\x80\x9CHello\xE2\x80\x9D quotes"), "Hello");
  EXPECT_EQ(quoted_text("no quotes here"), "");
  EXPECT_EQ(quoted_text("unclosed \"quote"), "");
}

TEST(TextEncoderTypes, QuotedSlotReadsOnlyTheQuotedText) {
  TextEncoderSlotOptions words, quoted;
  words.name = "words";
  words.type = "ul2";
  words.encoder = TextEncoderOptions{16, 1, 2, 12, 0, 0, 0, 500};
  quoted.name = "quoted";
  quoted.type = "byt5";
  quoted.encoder = TextEncoderOptions{16, 1, 2, 16};
  quoted.input = "quoted";
  TextConditioner cond(std::vector<TextEncoderSlotOptions>{words, quoted}, 8);
  auto gen = make_init_generator(3);
  cond->init_weights(gen);
  torch::NoGradGuard no_grad;
  const std::vector<std::string> texts = {"FPS-16 a sign saying \"OPEN\"", "FPS-16 a door with \"OPEN\" on it",
                                          "FPS-16 a sign saying \"SHUT\""};
  TextTokens q = cond->slot("quoted")->forward(texts);
  EXPECT_TRUE(torch::allclose(q.tokens[0], q.tokens[1], 1e-5, 1e-6));   // same quote, other words
  EXPECT_FALSE(torch::equal(q.tokens[0], q.tokens[2]));  // another quote
  TextTokens w = cond->slot("words")->forward(texts);
  EXPECT_FALSE(torch::equal(w.tokens[0].narrow(0, 0, 3), w.tokens[1].narrow(0, 0, 3)));
  // The conditioning sequence is both slots' tokens, concatenated.
  TextTokens all = cond->forward(texts);
  EXPECT_EQ(all.tokens.size(1), w.tokens.size(1) + q.tokens.size(1));
}

TEST(TextEncoderTypes, T5PositionBuckets) {
  torch::Tensor b = t5_position_buckets(300);
  auto at = [&](int64_t i, int64_t j) { return b[i][j].item<int64_t>(); };
  EXPECT_EQ(at(5, 5), 0);
  EXPECT_EQ(at(5, 6), 17);   // one to the right: the upper half
  EXPECT_EQ(at(6, 5), 1);    // one to the left
  EXPECT_EQ(at(0, 7), 23);   // still exact below 8
  EXPECT_EQ(at(0, 299), 31); // far right: the last bucket
  EXPECT_EQ(at(299, 0), 15); // far left
  for (int64_t d = 1; d < 200; ++d) EXPECT_LE(at(0, d), at(0, d + 1));  // monotone in distance
}

TEST(TextEncoderTypes, BadOptionsNameTypeAndField) {
  auto message = [](const std::string& type, const TextEncoderOptions& o) {
    try {
      validate(type, o);
    } catch (const reel::UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(contains(message("ul2", {16, 1, 2, 12, 3}), "(ul2) option ngram = 3 applies to type byte only"));
  EXPECT_TRUE(contains(message("byt5", {16, 1, 2, 12, 0, 0, 0, 100}), "vocab = 100 must be >= 259"));
  EXPECT_TRUE(contains(message("metaclip", {16, 1, 3, 12}), "heads = 3 does not divide dim = 16"));
  EXPECT_TRUE(contains(message("byte", {16, 1, 2, 12, 0, 32}), "(byte) option ffn_dim = 32 does not apply"));
  EXPECT_TRUE(contains(message("gpt", {}), "type = 'gpt' is unknown; known types: byte, byt5, ul2, metaclip"));
  EXPECT_EQ(message("byt5", {16, 1, 3, 12, 0, 0, 8, 0}), "no error");  // head_dim instead of dim / heads
}

TEST(TextEncoderTypes, MovieGenSlotsAndTheirCost) {
  const T2VOptions& big = find_size(find_model("t2v"), "30b");
  ASSERT_EQ(big.text.size(), 3u);
  EXPECT_EQ(big.text[2].input, "quoted");
  const int64_t ul2 = text_encoder_param_count("ul2", big.text[0].encoder);
  const int64_t metaclip = text_encoder_param_count("metaclip", big.text[1].encoder);
  const int64_t byt5 = text_encoder_param_count("byt5", big.text[2].encoder);
  EXPECT_GT(ul2, 8'000'000'000);   // UL2 20B's encoder half
  EXPECT_LT(ul2, 10'000'000'000);
  EXPECT_GT(metaclip, 300'000'000);  // ViT-H/14's text tower
  EXPECT_LT(metaclip, 400'000'000);
  EXPECT_GT(byt5, 200'000'000);      // ByT5-small's encoder
  EXPECT_LT(byt5, 240'000'000);
  // Per-slot lengths: equal lengths give the single-length count; a shorter quoted slot costs less.
  const FlopCount same = t2v_forward_flops(big, 1024, 64);
  EXPECT_DOUBLE_EQ(t2v_forward_flops(big, 1024, std::vector<int64_t>{64, 64, 64}).forward_flops, same.forward_flops);
  EXPECT_LT(t2v_forward_flops(big, 1024, std::vector<int64_t>{64, 64, 8}).forward_flops, same.forward_flops);
  // Frozen encoders run forward only: their cost is that of the encoders alone.
  const TextEncoderCost c = text_encoder_cost("metaclip", big.text[1].encoder);
  EXPECT_DOUBLE_EQ(c.matmul_weights_per_token, 24 * (4.0 * 1024 * 1024 + 2.0 * 1024 * 4096));
}

}  // namespace
}  // namespace reel::model
