// Text caches: a frozen text encoder's outputs for every conditioning string of a dataset,
// computed once (`reel data encode-text`, trainer/text_encode.h) so that training reads them
// instead of running the encoder every step (recipe key data.text_cache).
//
// Format "reel-text-cache-1", a directory:
//   text_cache.json   the manifest: format, source (the dataset), model (the recipe or checkpoint
//                     the encoders came from), dtype ("bfloat16" | "float32"), chunk_size,
//                     chunks, strings, and per cached slot its name, type, dim, depth, heads,
//                     max_len, ngram and fingerprint (CRC-64 of the encoder's weights, 16 hex
//                     digits; see trainer/text_encode.h)
//   chunk_NNNNN.h5    strings [N * chunk_size, (N + 1) * chunk_size) of the sorted unique
//                     strings; attributes format, chunk, count, dtype and key (the manifest's
//                     slots, fingerprints and dtype, so a chunk of another cache is never
//                     taken for this one's); datasets
//                       text                    variable-length UTF-8 strings (count)
//                       <slot>/lengths          int32 (count): tokens of each string
//                       <slot>/tokens           (sum of lengths, dim): the rows of every string
//                                               in order; uint16 bf16 bits or float32
// Strings are the conditioning texts the trainer builds ("FPS-8 a red circle ..."), plus "" (the
// caption-dropout input). Chunks are written under a temporary name and renamed when complete.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace reel::data {

constexpr const char* kTextCacheFormat = "reel-text-cache-1";

struct TextCacheSlot {
  std::string name, type;
  int64_t dim = 0, depth = 0, heads = 0, max_len = 0, ngram = 0;
  int64_t ffn_dim = 0, head_dim = 0, vocab = 0;  // 0 in manifests written before these existed
  std::string input = "caption";                 // what the slot reads: caption | quoted
  uint64_t fingerprint = 0;
};

struct TextCacheManifest {
  std::string source, model;
  std::string dtype = "bfloat16";  // "bfloat16" | "float32"
  int64_t chunk_size = 1024, chunks = 0, strings = 0;
  std::vector<TextCacheSlot> slots;

  std::string key() const;  // what a chunk must carry to belong to this cache
  bool operator==(const TextCacheManifest& o) const;
};

std::string to_json(const TextCacheManifest& m);
// UserError naming `path` for a malformed manifest or another format.
TextCacheManifest parse_text_cache_manifest(const std::string& text, const std::string& path);
std::string text_cache_manifest_path(const std::string& dir);   // dir/text_cache.json
std::string text_cache_chunk_path(const std::string& dir, int64_t chunk);  // dir/chunk_NNNNN.h5

// Writes chunk `chunk` of the cache `m` at `path`: texts[i]'s rows for slot s are
// rows.at(s)[i], float (L_i, dim). Temporary file, renamed when complete.
void write_text_cache_chunk(const std::string& path, int64_t chunk, const TextCacheManifest& m,
                            const std::vector<std::string>& texts,
                            const std::map<std::string, std::vector<torch::Tensor>>& rows);
// True when `path` is a complete chunk `chunk` of cache `m` holding exactly `texts`.
bool text_cache_chunk_complete(const std::string& path, int64_t chunk, const TextCacheManifest& m,
                               const std::vector<std::string>& texts);

// A whole cache, opened for lookups. Thread-safe (HDF5 calls under the process-wide lock).
class TextCache {
 public:
  // UserError naming the directory or file when the manifest is missing or malformed, a chunk is
  // missing, damaged or of another cache, or the strings do not add up to the manifest's count.
  static std::shared_ptr<const TextCache> open(const std::string& dir);
  ~TextCache();

  const std::string& dir() const { return dir_; }
  const TextCacheManifest& manifest() const { return manifest_; }
  bool contains(const std::string& text) const { return index_.count(text) > 0; }
  // Slot `slot`'s rows for each text: tokens float32 (B, L, dim) zero past each text's length,
  // mask bool (B, L), L the longest. UserError naming the text and the cache when a text is not
  // in it (the cache was built from another dataset), or for an unknown slot.
  std::pair<torch::Tensor, torch::Tensor> lookup(const std::string& slot, const std::vector<std::string>& texts) const;

 private:
  struct Chunk;
  TextCache() = default;
  std::string dir_;
  TextCacheManifest manifest_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> index_;  // text -> (chunk, row in chunk)
};

}  // namespace reel::data
