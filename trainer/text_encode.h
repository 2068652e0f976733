// `reel data encode-text`: a text-to-video model's frozen text encoders run once over every
// conditioning string of a dataset, into a text cache (data/text_cache.h) that training reads
// instead (recipe key data.text_cache), across the ranks of an mpirun job, resumable.
//
// The strings are the trainer's conditioning texts ("FPS-<fps> <caption>") of every sample of
// DIR/train and DIR/val (or DIR), pixel or latent, plus "" (caption dropout), sorted and made
// unique. They are cut into chunks of `chunk` strings, dealt round-robin to the ranks; each chunk
// is encoded in fixed micro-batches of `batch` strings, so the cache does not depend on the
// number of ranks. A chunk already complete is skipped, so a rerun finishes an interrupted job.
//
// The encoders' weights come from a recipe (its model.*, seed and init_from: the weights a run
// of that recipe starts with) or a checkpoint (its model weights, not EMA). Only frozen slots
// (text_encoders[i].trainable: false) are cached: a trainable encoder changes every step. Each
// cached slot records a fingerprint of its encoder's weights, which the trainer compares with
// its own before it uses the cache.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/text_cache.h"
#include "model/t2v.h"

namespace reel::trainer {

struct TextEncodeOptions {
  std::string model;               // recipe (*.yaml, *.yml) or checkpoint (any resolve_checkpoint_argument form)
  std::vector<std::string> overrides;  // key=value for a recipe
  std::string in_dir, out_dir;
  int batch = 64;                  // strings per encoder call, >= 1
  int64_t chunk = 1024;            // strings per chunk file, >= 1
  std::string dtype = "bfloat16";  // "bfloat16" | "float32"
  int rank = 0, world_size = 1;
};

struct TextEncodeReport {
  int64_t strings = 0, chunks = 0;  // in the cache
  int64_t mine = 0;                 // chunks dealt to this rank
  int64_t already_done = 0;         // of those, complete from an earlier run
  int64_t encoded = 0;              // strings encoded by this rank in this run
  double seconds = 0;
};

// UserError for a missing dataset or model source, a model without frozen text slots, bad
// options, or an existing cache in out_dir built from other weights or strings.
TextEncodeReport encode_text_cache(const TextEncodeOptions& options);

// CRC-64 of slot `slot`'s encoder parameters (fp32 bytes, in name order): equal weights, equal
// fingerprint.
uint64_t text_encoder_fingerprint(model::T2VModel& model, const std::string& slot);

// Checks that `cache` can stand in for `model`'s encoders: every cached slot exists in the model,
// is frozen, has the same options and the same fingerprint. UserError naming `where` (the recipe),
// the slot and what differs.
void check_text_cache(const data::TextCache& cache, model::T2VModel& model, const std::string& where);

// The cached slots' encoder outputs for `texts`, for T2VModel::encode_text.
model::EncodedText cached_text(const data::TextCache& cache, const std::vector<std::string>& texts);

}  // namespace reel::trainer
