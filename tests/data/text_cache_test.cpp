// Text caches: rows written per chunk come back per text (float32 exactly, bfloat16 rounded),
// padded and masked to the longest text of a lookup; complete chunks are recognised and chunks of
// another cache are not; missing texts, missing chunks and bad manifests are refused by name.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>

#include "common/fs.h"
#include "data/text_cache.h"
#include "tests/test_util.h"

using namespace reel::data;
namespace fs = std::filesystem;
using reel::testing::expect_user_error;

namespace {

struct Fixture {
  fs::path dir;
  TextCacheManifest m;
  std::vector<std::string> texts = {"", "FPS-8 a red circle", "FPS-8 a blue square moves left", "FPS-16 \xC3\xA9"};
  std::map<std::string, std::vector<torch::Tensor>> rows;

  explicit Fixture(const std::string& dtype) {
    dir = fs::temp_directory_path() / ("reel_text_cache_test_" + dtype + std::to_string(::getpid()));
    fs::remove_all(dir);
    m.source = "data";
    m.model = "recipe.yaml";
    m.dtype = dtype;
    m.chunk_size = 3;
    m.strings = 4;
    m.chunks = 2;
    m.slots = {{"byte", "byte", 6, 1, 2, 48, 3, 24, 3, 259, "caption", 0x0123456789abcdefull},
               {"other", "byt5", 4, 1, 1, 48, 0, 16, 8, 384, "quoted", 42}};
    torch::manual_seed(3);
    for (size_t i = 0; i < texts.size(); ++i) {
      rows["byte"].push_back(torch::randn({int64_t(2 + i), 6}) * 4);
      rows["other"].push_back(torch::randn({int64_t(5 - i), 4}));
    }
    reel::make_dirs(dir.string());
    reel::write_file_atomic(text_cache_manifest_path(dir.string()), to_json(m));
  }
  ~Fixture() { fs::remove_all(dir); }
  std::vector<std::string> chunk_texts(int64_t c) const {
    return {texts.begin() + c * 3, texts.begin() + std::min<int64_t>(4, c * 3 + 3)};
  }
  void write(int64_t c) const {
    std::map<std::string, std::vector<torch::Tensor>> r;
    for (const auto& [slot, v] : rows) r[slot] = {v.begin() + c * 3, v.begin() + std::min<int64_t>(4, c * 3 + 3)};
    write_text_cache_chunk(text_cache_chunk_path(dir.string(), c), c, m, chunk_texts(c), r);
  }
};

}  // namespace

TEST(TextCache, RowsComeBackPerTextPaddedAndMasked) {
  for (const std::string dtype : {"float32", "bfloat16"}) {
    Fixture f(dtype);
    f.write(0);
    f.write(1);
    auto cache = TextCache::open(f.dir.string());
    EXPECT_EQ(cache->manifest(), f.m);
    EXPECT_TRUE(cache->contains("FPS-16 \xC3\xA9"));
    EXPECT_FALSE(cache->contains("FPS-8 a green circle"));
    const std::vector<int> order = {3, 0, 2, 2};
    std::vector<std::string> texts;
    for (int i : order) texts.push_back(f.texts[size_t(i)]);
    for (const std::string slot : {"byte", "other"}) {
      auto [tokens, mask] = cache->lookup(slot, texts);
      int64_t longest = 0;
      for (int i : order) longest = std::max(longest, f.rows[slot][size_t(i)].size(0));
      ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{4, longest, slot == "byte" ? 6 : 4}));
      for (size_t k = 0; k < order.size(); ++k) {
        torch::Tensor want = f.rows[slot][size_t(order[k])];
        if (dtype == "bfloat16") want = want.to(torch::kBFloat16).to(torch::kFloat32);
        const int64_t len = want.size(0);
        EXPECT_TRUE(torch::equal(tokens[int64_t(k)].narrow(0, 0, len), want)) << dtype << " " << slot << " " << k;
        EXPECT_TRUE(mask[int64_t(k)].narrow(0, 0, len).all().item<bool>());
        EXPECT_FALSE(mask[int64_t(k)].narrow(0, len, longest - len).any().item<bool>());
        EXPECT_EQ(tokens[int64_t(k)].narrow(0, len, longest - len).abs().sum().item<float>(), 0.0f);
      }
    }
    expect_user_error([&] { cache->lookup("byte", {"FPS-8 a green circle"}); },
                      "has no entry for \"FPS-8 a green circle\": it was built from another dataset");
    expect_user_error([&] { cache->lookup("nope", {""}); }, "holds no slot 'nope'");
  }
}

TEST(TextCache, CompleteChunksAreRecognisedAndForeignOnesRefused) {
  Fixture f("float32");
  const std::string c0 = text_cache_chunk_path(f.dir.string(), 0);
  EXPECT_FALSE(text_cache_chunk_complete(c0, 0, f.m, f.chunk_texts(0)));
  f.write(0);
  EXPECT_TRUE(text_cache_chunk_complete(c0, 0, f.m, f.chunk_texts(0)));
  EXPECT_FALSE(text_cache_chunk_complete(c0, 1, f.m, f.chunk_texts(0)));   // another chunk's place
  EXPECT_FALSE(text_cache_chunk_complete(c0, 0, f.m, f.chunk_texts(1)));   // other strings
  TextCacheManifest other = f.m;
  other.slots[0].fingerprint ^= 1;                                         // other weights
  EXPECT_FALSE(text_cache_chunk_complete(c0, 0, other, f.chunk_texts(0)));
  other = f.m;
  other.dtype = "bfloat16";
  EXPECT_FALSE(text_cache_chunk_complete(c0, 0, other, f.chunk_texts(0)));

  expect_user_error([&] { TextCache::open(f.dir.string()); }, "chunk_00001.h5 is missing");
  f.write(1);
  reel::write_file_atomic(text_cache_manifest_path(f.dir.string()), to_json(other));  // a dtype the chunks lack
  expect_user_error([&] { TextCache::open(f.dir.string()); }, "belongs to another text cache");
  {  // a truncated chunk is not complete, and the cache refuses it
    reel::write_file_atomic(text_cache_manifest_path(f.dir.string()), to_json(f.m));
    const std::string c1 = text_cache_chunk_path(f.dir.string(), 1);
    fs::resize_file(c1, fs::file_size(c1) / 2);
    EXPECT_FALSE(text_cache_chunk_complete(c1, 1, f.m, f.chunk_texts(1)));
    expect_user_error([&] { TextCache::open(f.dir.string()); }, "chunk_00001.h5");
  }
}

TEST(TextCache, ManifestRoundTripsAndBadOnesAreRefused) {
  Fixture f("bfloat16");
  EXPECT_EQ(parse_text_cache_manifest(to_json(f.m), "m.json"), f.m);
  EXPECT_EQ(parse_text_cache_manifest(to_json(f.m), "m.json").slots[0].fingerprint, 0x0123456789abcdefull);
  EXPECT_EQ(parse_text_cache_manifest(to_json(f.m), "m.json").slots[1].input, "quoted");
  // A manifest written before ffn_dim, head_dim, vocab and input existed still reads (0 and caption).
  nlohmann::json old = nlohmann::json::parse(to_json(f.m));
  for (auto& slot : old["slots"])
    for (const char* key : {"ffn_dim", "head_dim", "vocab", "input"}) slot.erase(key);
  const TextCacheManifest read = parse_text_cache_manifest(old.dump(), "old.json");
  EXPECT_EQ(read.slots[0].ffn_dim, 0);
  EXPECT_EQ(read.slots[0].vocab, 0);
  EXPECT_EQ(read.slots[1].input, "caption");
  EXPECT_EQ(read.slots[0].fingerprint, 0x0123456789abcdefull);
  expect_user_error([] { parse_text_cache_manifest("{", "m.json"); }, "m.json: not a text cache manifest");
  TextCacheManifest bad = f.m;
  bad.chunks = 3;
  expect_user_error([&] { parse_text_cache_manifest(to_json(bad), "m.json"); }, "m.json: inconsistent counts");
  bad = f.m;
  bad.dtype = "float16";
  expect_user_error([&] { parse_text_cache_manifest(to_json(bad), "m.json"); }, "dtype 'float16'");
  fs::remove(text_cache_manifest_path(f.dir.string()));
  expect_user_error([&] { TextCache::open(f.dir.string()); }, "text_cache.json does not exist; build the cache");
}
