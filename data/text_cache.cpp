// "reel-text-cache-1" directories (format in text_cache.h), every HDF5 call under hdf5_mutex().
#include "data/text_cache.h"

#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/fs.h"
#include "data/internal/shard_hdf5.h"

namespace reel::data {
using namespace detail;

namespace {

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

hid_t file_type(const TextCacheManifest& m) { return m.dtype == "float32" ? H5T_IEEE_F32LE : H5T_STD_U16LE; }

// Rows [first, first + count) of a 2-D dataset (N, D) into `out` (count x D of mem_type).
void read_rows(hid_t dset, const std::string& path, const std::string& name, hid_t mem_type, hsize_t first,
               hsize_t count, hsize_t dim, void* out) {
  Id file_space(check_read(H5Dget_space(dset), path, cat("reading the ", name, " dataspace")));
  const hsize_t start[2] = {first, 0}, counts[2] = {count, dim};
  check_read(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, counts, nullptr), path,
             cat("selecting ", name, " rows ", first, "..", first + count - 1));
  Id mem_space(check_read(H5Screate_simple(2, counts, nullptr), path, "creating a dataspace"));
  check_read(H5Dread(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out), path,
             cat("reading ", name, " rows ", first, "..", first + count - 1));
}

}  // namespace

std::string TextCacheManifest::key() const {
  std::string k = cat(dtype, ";", chunk_size, ";", strings);
  for (const TextCacheSlot& s : slots) k += cat(";", s.name, ":", s.dim, ":", hex64(s.fingerprint));
  return k;
}

bool TextCacheManifest::operator==(const TextCacheManifest& o) const { return to_json(*this) == to_json(o); }

std::string to_json(const TextCacheManifest& m) {
  nlohmann::json slots = nlohmann::json::array();
  for (const TextCacheSlot& s : m.slots)
    slots.push_back({{"name", s.name}, {"type", s.type}, {"dim", s.dim}, {"depth", s.depth}, {"heads", s.heads},
                     {"max_len", s.max_len}, {"ngram", s.ngram}, {"ffn_dim", s.ffn_dim}, {"head_dim", s.head_dim},
                     {"vocab", s.vocab}, {"input", s.input}, {"fingerprint", hex64(s.fingerprint)}});
  const nlohmann::json j = {{"format", kTextCacheFormat}, {"source", m.source}, {"model", m.model},
                            {"dtype", m.dtype}, {"chunk_size", m.chunk_size}, {"chunks", m.chunks},
                            {"strings", m.strings}, {"slots", slots}};
  return j.dump(2) + "\n";
}

TextCacheManifest parse_text_cache_manifest(const std::string& text, const std::string& path) {
  TextCacheManifest m;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    const std::string format = j.at("format").get<std::string>();
    if (format != kTextCacheFormat) fail(path, ": format '", format, "' is not '", kTextCacheFormat, "'");
    m.source = j.at("source").get<std::string>();
    m.model = j.at("model").get<std::string>();
    m.dtype = j.at("dtype").get<std::string>();
    m.chunk_size = j.at("chunk_size").get<int64_t>();
    m.chunks = j.at("chunks").get<int64_t>();
    m.strings = j.at("strings").get<int64_t>();
    for (const auto& s : j.at("slots")) {
      TextCacheSlot slot;
      slot.name = s.at("name").get<std::string>();
      slot.type = s.at("type").get<std::string>();
      slot.dim = s.at("dim").get<int64_t>();
      slot.depth = s.at("depth").get<int64_t>();
      slot.heads = s.at("heads").get<int64_t>();
      slot.max_len = s.at("max_len").get<int64_t>();
      slot.ngram = s.at("ngram").get<int64_t>();
      slot.ffn_dim = s.value("ffn_dim", int64_t(0));
      slot.head_dim = s.value("head_dim", int64_t(0));
      slot.vocab = s.value("vocab", int64_t(0));
      slot.input = s.value("input", std::string("caption"));
      slot.fingerprint = std::stoull(s.at("fingerprint").get<std::string>(), nullptr, 16);
      m.slots.push_back(slot);
    }
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    fail(path, ": not a text cache manifest (", e.what(), "); re-create the cache with `reel data encode-text`");
  }
  if (m.dtype != "bfloat16" && m.dtype != "float32") fail(path, ": dtype '", m.dtype, "' is not bfloat16 or float32");
  if (m.chunk_size < 1 || m.chunks < 0 || m.strings < 0 || m.slots.empty() ||
      m.chunks != (m.strings + m.chunk_size - 1) / m.chunk_size)
    fail(path, ": inconsistent counts (chunk_size ", m.chunk_size, ", chunks ", m.chunks, ", strings ", m.strings,
         ", slots ", m.slots.size(), "); re-create the cache with `reel data encode-text`");
  return m;
}

std::string text_cache_manifest_path(const std::string& dir) { return dir + "/text_cache.json"; }

std::string text_cache_chunk_path(const std::string& dir, int64_t chunk) {
  char name[32];
  std::snprintf(name, sizeof name, "chunk_%05lld.h5", static_cast<long long>(chunk));
  return dir + "/" + name;
}

void write_text_cache_chunk(const std::string& path, int64_t chunk, const TextCacheManifest& m,
                            const std::vector<std::string>& texts,
                            const std::map<std::string, std::vector<torch::Tensor>>& rows) {
  const hsize_t n = texts.size();
  Hdf5Lock lock;
  PartialFile file(path);
  const hid_t f = file.get();
  write_string_attr(f, path, "format", kTextCacheFormat);
  write_int_attr(f, path, "chunk", chunk);
  write_int_attr(f, path, "count", int64_t(n));
  write_string_attr(f, path, "dtype", m.dtype);
  write_string_attr(f, path, "key", m.key());
  std::vector<const char*> ptrs(n);
  for (hsize_t i = 0; i < n; ++i) ptrs[i] = texts[i].c_str();
  {
    Id str(utf8_string_type(path));
    write_dataset(f, path, "text", str.get(), str.get(), {n}, ptrs.data());
  }
  for (const TextCacheSlot& s : m.slots) {
    const std::vector<torch::Tensor>& r = rows.at(s.name);
    REEL_CHECK(r.size() == n, "text cache chunk '", path, "': slot ", s.name, " has ", r.size(), " rows for ", n, " texts");
    std::vector<int32_t> lengths(n);
    for (hsize_t i = 0; i < n; ++i) {
      REEL_CHECK(r[i].dim() == 2 && r[i].size(1) == s.dim && r[i].size(0) >= 1, "text cache chunk '", path,
                 "': slot ", s.name, " row ", i, " must be (L >= 1, ", s.dim, "), got ", r[i].sizes());
      lengths[i] = int32_t(r[i].size(0));
    }
    torch::Tensor all = torch::cat(r, 0).to(torch::kFloat32).contiguous();
    if (m.dtype == "bfloat16") all = all.to(torch::kBFloat16).view(torch::kInt16).contiguous();
    Id group(check(H5Gcreate2(f, s.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path,
                   cat("creating group '", s.name, "'")));
    write_dataset(group.get(), path, "lengths", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, lengths.data());
    write_dataset(group.get(), path, "tokens", file_type(m),
                  m.dtype == "float32" ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT16,
                  {hsize_t(all.size(0)), hsize_t(s.dim)}, all.data_ptr());
  }
  file.publish();
}

struct TextCache::Chunk {
  std::string path;
  Id file;
  std::map<std::string, Id> tokens;                         // by slot
  std::map<std::string, std::vector<int64_t>> offsets;      // by slot: row offsets, count + 1
};

namespace {

// Opens a chunk and checks its attributes against `m`; the strings it holds.
std::vector<std::string> open_chunk(const std::string& path, int64_t chunk, const TextCacheManifest& m, Id& file) {
  file = open_readonly(path, "text cache chunk", "re-run `reel data encode-text` to write it");
  const hid_t f = file.get();
  const std::string format = read_string_attr(f, path, "format");
  if (format != kTextCacheFormat) fail("'", path, "' has format '", format, "', not '", kTextCacheFormat, "'");
  if (read_int_attr(f, path, "chunk") != chunk || read_string_attr(f, path, "key") != m.key())
    fail("'", path, "' belongs to another text cache (other encoder weights, dtype or strings); re-create the ",
         "cache with `reel data encode-text` into an empty directory");
  const int64_t count = read_int_attr(f, path, "count");
  const int64_t expected = std::min(m.chunk_size, m.strings - chunk * m.chunk_size);
  if (count != expected) fail("'", path, "' holds ", count, " strings, the manifest says ", expected);
  return read_strings(f, path, "text", hsize_t(count));
}

}  // namespace

bool text_cache_chunk_complete(const std::string& path, int64_t chunk, const TextCacheManifest& m,
                               const std::vector<std::string>& texts) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  try {
    Hdf5Lock lock;
    Id file;
    return open_chunk(path, chunk, m, file) == texts;
  } catch (const UserError&) {
    return false;  // damaged or foreign: write it again
  }
}

std::shared_ptr<const TextCache> TextCache::open(const std::string& dir) {
  std::error_code ec;
  const std::string manifest_path = text_cache_manifest_path(dir);
  if (!std::filesystem::is_regular_file(manifest_path, ec))
    fail("text cache '", dir, "': ", manifest_path, " does not exist; build the cache with `reel data encode-text`");
  std::shared_ptr<TextCache> cache(new TextCache());
  cache->dir_ = dir;
  cache->manifest_ = parse_text_cache_manifest(read_file(manifest_path), manifest_path);
  const TextCacheManifest& m = cache->manifest_;
  Hdf5Lock lock;
  for (int64_t c = 0; c < m.chunks; ++c) {
    const std::string path = text_cache_chunk_path(dir, c);
    if (!std::filesystem::is_regular_file(path, ec))
      fail("text cache '", dir, "' is incomplete: ", path, " is missing; rerun `reel data encode-text` to finish it");
    auto chunk = std::make_unique<Chunk>();
    chunk->path = path;
    const std::vector<std::string> texts = open_chunk(path, c, m, chunk->file);
    const hsize_t n = texts.size();
    for (const TextCacheSlot& s : m.slots) {
      const std::vector<int32_t> lengths =
          read_numbers<int32_t>(chunk->file.get(), path, s.name + "/lengths", H5T_INTEGER, H5T_NATIVE_INT32, {n});
      std::vector<int64_t> offsets(n + 1, 0);
      for (hsize_t i = 0; i < n; ++i) {
        if (lengths[i] < 1) fail("'", path, "': slot ", s.name, " string ", i, " has length ", lengths[i]);
        offsets[i + 1] = offsets[i] + lengths[i];
      }
      chunk->tokens[s.name] = open_dataset(chunk->file.get(), path, s.name + "/tokens",
                                           m.dtype == "float32" ? H5T_FLOAT : H5T_INTEGER,
                                           {hsize_t(offsets.back()), hsize_t(s.dim)});
      chunk->offsets[s.name] = std::move(offsets);
    }
    for (hsize_t i = 0; i < n; ++i) {
      if (!cache->index_.emplace(texts[i], std::make_pair(c, int64_t(i))).second)
        fail("'", path, "': string '", texts[i], "' appears twice in the cache; re-create it");
    }
    cache->chunks_.push_back(std::move(chunk));
  }
  if (int64_t(cache->index_.size()) != m.strings)
    fail("text cache '", dir, "' holds ", cache->index_.size(), " strings, its manifest says ", m.strings);
  return cache;
}

TextCache::~TextCache() {
  Hdf5Lock lock;
  chunks_.clear();
}

std::pair<torch::Tensor, torch::Tensor> TextCache::lookup(const std::string& slot,
                                                          const std::vector<std::string>& texts) const {
  const TextCacheSlot* s = nullptr;
  for (const TextCacheSlot& candidate : manifest_.slots)
    if (candidate.name == slot) s = &candidate;
  if (s == nullptr) fail("text cache '", dir_, "' holds no slot '", slot, "'");
  std::vector<std::pair<int64_t, int64_t>> where;
  int64_t longest = 0;
  for (const std::string& text : texts) {
    auto it = index_.find(text);
    if (it == index_.end())
      fail("text cache '", dir_, "' has no entry for \"", text, "\": it was built from another dataset (",
           manifest_.source, "); rebuild it with `reel data encode-text` over this one");
    where.push_back(it->second);
    const auto& off = chunks_[size_t(it->second.first)]->offsets.at(slot);
    longest = std::max(longest, off[size_t(it->second.second) + 1] - off[size_t(it->second.second)]);
  }
  const int64_t b = int64_t(texts.size());
  torch::Tensor tokens = torch::zeros({b, longest, s->dim});
  torch::Tensor mask = torch::zeros({b, longest}, torch::kBool);
  const bool bf16 = manifest_.dtype == "bfloat16";
  Hdf5Lock lock;
  for (int64_t i = 0; i < b; ++i) {
    const Chunk& chunk = *chunks_[size_t(where[i].first)];
    const auto& off = chunk.offsets.at(slot);
    const int64_t first = off[size_t(where[i].second)], len = off[size_t(where[i].second) + 1] - first;
    torch::Tensor rows = torch::empty({len, s->dim}, bf16 ? torch::kInt16 : torch::kFloat32);
    read_rows(chunk.tokens.at(slot).get(), chunk.path, slot + "/tokens", bf16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT,
              hsize_t(first), hsize_t(len), hsize_t(s->dim), rows.data_ptr());
    tokens[i].narrow(0, 0, len).copy_(bf16 ? rows.view(torch::kBFloat16).to(torch::kFloat32) : rows);
    mask[i].narrow(0, 0, len).fill_(true);
  }
  return {tokens, mask};
}

}  // namespace reel::data
