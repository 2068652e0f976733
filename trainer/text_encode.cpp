// `reel data encode-text` and the trainer's side of text caches (trainer/text_encode.h).
#include "trainer/text_encode.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "data/loader.h"
#include "model/registry.h"
#include "model/text_encoder_types.h"
#include "trainer/checkpoint.h"
#include "trainer/init_from.h"
#include "trainer/recipe.h"
#include "trainer/task.h"

namespace reel::trainer {
namespace fs = std::filesystem;

namespace {

// The sorted unique conditioning texts of every sample in the dataset, plus "".
std::vector<std::string> dataset_texts(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("encode-text: --in '", dir, "' is not a directory; give a dataset (`reel data synth`, `ingest` or `encode`)");
  std::vector<std::string> parts;
  for (const char* s : {"train", "val"})
    if (fs::is_directory(fs::path(dir) / s, ec)) parts.push_back((fs::path(dir) / s).string());
  if (parts.empty()) parts.push_back(dir);
  std::set<std::string> texts{""};
  for (const std::string& part : parts) {
    const data::Dataset d = data::Dataset::open(part);
    for (int64_t i = 0; i < d.size(); ++i) texts.insert(conditioning_text(d.caption(i), d.fps(i)));
  }
  return {texts.begin(), texts.end()};
}

model::T2VModel model_from(const TextEncodeOptions& o, Recipe& recipe) {
  const std::string ext = fs::path(o.model).extension().string();
  model::T2VModel model{nullptr};
  if (ext == ".yaml" || ext == ".yml") {  // the weights a run of this recipe starts with
    recipe = load_recipe(o.model, o.overrides);
    model = model::find_model(recipe.model.name).build(t2v_options(recipe));
    model->init_weights(recipe.seed);
    if (!recipe.init_from.empty())
      init_from_checkpoint(*model, load_checkpoint(resolve_checkpoint_argument(recipe.init_from)));
    for (const TextEncoderSection& e : recipe.model.text_encoders) {
      if (!e.weights.empty())
        load_text_encoder_weights(*model, e.name, load_checkpoint(resolve_checkpoint_argument(e.weights)));
    }
  } else {
    if (!o.overrides.empty()) fail("encode-text: overrides (", o.overrides.front(), ") apply to a recipe, not a checkpoint");
    const std::string path = resolve_checkpoint_argument(o.model);
    const Checkpoint ckpt = load_checkpoint(path);
    recipe = checkpoint_recipe(ckpt, path);
    if (recipe.model.name == "tae") fail(path, " is a TAE checkpoint; encode-text needs a text-to-video model");
    model = model::find_model(recipe.model.name).build(t2v_options(recipe));
    load_module_state(*model, ckpt, "model/");
  }
  model->eval();
  return model;
}

}  // namespace

// "byte encoder: dim 128, depth 2, ..., reads caption", with the type's defaults resolved.
static std::string slot_description(const std::string& type, const model::TextEncoderOptions& options, const std::string& input) {
  const model::TextEncoderOptions o = model::resolved(type, options);
  return cat("a ", type, " encoder (dim ", o.dim, ", depth ", o.depth, ", heads ", o.heads, ", max_len ", o.max_len,
             ", ngram ", o.ngram, ", ffn_dim ", o.ffn_dim, ", head_dim ", o.head_dim, ", vocab ", o.vocab, ") reading the ",
             input);
}

uint64_t text_encoder_fingerprint(model::T2VModel& model, const std::string& slot) {
  uint64_t crc = 0;
  for (const auto& p : model->text->slot(slot)->encoder->named_parameters()) {
    crc = crc64(p.key().data(), p.key().size(), crc);
    const torch::Tensor v = p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    crc = crc64(v.data_ptr(), size_t(v.numel()) * sizeof(float), crc);
  }
  return crc;
}

TextEncodeReport encode_text_cache(const TextEncodeOptions& o) {
  if (o.batch < 1) fail("encode-text: --batch ", o.batch, " must be >= 1");
  if (o.chunk < 1) fail("encode-text: --chunk ", o.chunk, " must be >= 1");
  if (o.dtype != "bfloat16" && o.dtype != "float32") fail("encode-text: --dtype '", o.dtype, "' must be bfloat16 or float32");
  REEL_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "bad rank ", o.rank, " of ", o.world_size);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> texts = dataset_texts(o.in_dir);
  Recipe recipe;
  model::T2VModel model = model_from(o, recipe);

  data::TextCacheManifest m;
  m.source = fs::absolute(o.in_dir).lexically_normal().string();
  m.model = fs::absolute(o.model).lexically_normal().string();
  m.dtype = o.dtype;
  m.chunk_size = o.chunk;
  m.strings = int64_t(texts.size());
  m.chunks = (m.strings + o.chunk - 1) / o.chunk;
  for (const model::TextEncoderSlotOptions& s : model->text->slot_options()) {
    if (s.trainable) continue;
    const model::TextEncoderOptions e = model::resolved(s.type, s.encoder);
    m.slots.push_back({s.name, s.type, e.dim, e.depth, e.heads, e.max_len, e.ngram, e.ffn_dim, e.head_dim, e.vocab,
                       s.input, text_encoder_fingerprint(model, s.name)});
  }
  if (m.slots.empty())
    fail("encode-text: every text slot of ", o.model, " is trainable; a cache stands in only for frozen encoders ",
         "(model.text_encoders[i].trainable: false), whose outputs do not change while training");

  // A cache already in out_dir must be this one (an interrupted run); anything else is refused.
  const std::string manifest_path = data::text_cache_manifest_path(o.out_dir);
  std::error_code ec;
  if (fs::exists(manifest_path, ec)) {
    const data::TextCacheManifest old = data::parse_text_cache_manifest(read_file(manifest_path), manifest_path);
    if (!(old == m))
      fail("encode-text: ", o.out_dir, " already holds a text cache of other encoder weights, strings or options (",
           manifest_path, "); remove it or give another --out");
  }
  for (const auto& e : fs::directory_iterator(o.out_dir, ec)) {  // every rank checks: no order between them
    const std::string name = e.path().filename().string();
    if (name.rfind("chunk_", 0) != 0 && name.rfind("text_cache.json", 0) != 0)
      fail("encode-text: --out '", o.out_dir, "' holds '", name, "', so it is not a text cache; give a new or empty ",
           "directory");
  }
  if (o.rank == 0) {
    make_dirs(o.out_dir);
    write_file_atomic(manifest_path, data::to_json(m));
  }

  TextEncodeReport report;
  report.strings = m.strings;
  report.chunks = m.chunks;
  torch::NoGradGuard no_grad;
  for (int64_t c = o.rank; c < m.chunks; c += o.world_size) {
    ++report.mine;
    const int64_t first = c * o.chunk, n = std::min(o.chunk, m.strings - first);
    const std::vector<std::string> mine(texts.begin() + first, texts.begin() + first + n);
    const std::string path = data::text_cache_chunk_path(o.out_dir, c);
    if (data::text_cache_chunk_complete(path, c, m, mine)) {
      ++report.already_done;
      continue;
    }
    std::map<std::string, std::vector<torch::Tensor>> rows;
    for (int64_t b = 0; b < n; b += o.batch) {
      const std::vector<std::string> part(mine.begin() + b, mine.begin() + std::min<int64_t>(n, b + o.batch));
      for (const data::TextCacheSlot& s : m.slots) {
        const model::TextTokens out = model->text->slot(s.name)->encode(part);
        for (size_t i = 0; i < part.size(); ++i) {
          const int64_t len = out.mask[int64_t(i)].sum().item<int64_t>();  // real tokens come first
          rows[s.name].push_back(out.tokens[int64_t(i)].narrow(0, 0, len).clone());
        }
      }
    }
    make_dirs(o.out_dir);
    data::write_text_cache_chunk(path, c, m, mine, rows);
    report.encoded += n;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

void check_text_cache(const data::TextCache& cache, model::T2VModel& model, const std::string& where) {
  const auto& slots = model->text->slot_options();
  for (const data::TextCacheSlot& c : cache.manifest().slots) {
    auto it = std::find_if(slots.begin(), slots.end(), [&](const auto& s) { return s.name == c.name; });
    if (it == slots.end())
      fail(where, ": data.text_cache '", cache.dir(), "' holds text slot '", c.name, "', which this model does not ",
           "have; build the cache from this recipe (`reel data encode-text --model RECIPE`)");
    if (it->trainable)
      fail(where, ": data.text_cache '", cache.dir(), "' stands in for text slot '", c.name, "', which is trainable ",
           "here; a cache only replaces a frozen encoder: set its trainable: false, or drop data.text_cache");
    const std::string cached = slot_description(c.type, {c.dim, c.depth, c.heads, c.max_len, c.ngram, c.ffn_dim,
                                                         c.head_dim, c.vocab}, c.input);
    const std::string mine = slot_description(it->type, it->encoder, it->input);
    if (cached != mine)
      fail(where, ": data.text_cache '", cache.dir(), "' was built for slot '", c.name, "' as ", cached,
           "; this model's is ", mine, "; rebuild it with `reel data encode-text --model RECIPE`");
    if (text_encoder_fingerprint(model, c.name) != c.fingerprint)
      fail(where, ": data.text_cache '", cache.dir(), "' was built from other weights of text slot '", c.name,
           "' (", cache.manifest().model, ") than this run's (seed, init_from or checkpoint differ); rebuild it ",
           "with `reel data encode-text --model` this recipe, or drop data.text_cache");
  }
}

model::EncodedText cached_text(const data::TextCache& cache, const std::vector<std::string>& texts) {
  model::EncodedText encoded;
  for (const data::TextCacheSlot& s : cache.manifest().slots) {
    auto [tokens, mask] = cache.lookup(s.name, texts);
    encoded[s.name] = {tokens, mask};
  }
  return encoded;
}

}  // namespace reel::trainer
