// `reel data encode`: a pixel dataset through a trained TAE's encoder into latent shards
// (data/latent_shards.h), across the ranks of an mpirun job, resumable.
//
// Every pixel shard (DIR/train/*.h5, DIR/val/*.h5, or DIR/*.h5 when there are no splits) becomes
// one latent shard of the same name under OUT. The shards, in (split, name) order, are dealt
// round-robin to the ranks; each rank encodes its own in fixed micro-batches in shard order, so
// the latents do not depend on the number of ranks. Latents are the posterior mean, stored as
// bf16. A shard whose latent file is already complete (same sample count and source) is skipped,
// so a rerun finishes an interrupted job. The ranks do not communicate: a failing rank ends the
// job through mpirun.
#pragma once

#include <cstdint>
#include <string>

namespace reel::trainer {

struct EncodeOptions {
  std::string tae;      // checkpoint file or run directory (any resolve_checkpoint_argument form)
  std::string in_dir, out_dir;
  int batch = 8;        // clips per encoder call, >= 1
  int64_t tile_frames = 0;  // > 0: encode clips longer than this in temporal tiles (Movie Gen: 32)
  int rank = 0, world_size = 1;
};

struct EncodeReport {
  int64_t shards = 0;        // pixel shards in the dataset
  int64_t mine = 0;          // this rank's share
  int64_t already_done = 0;  // of those, complete from an earlier run
  int64_t samples = 0;       // encoded by this rank in this run
  double seconds = 0;
};

// UserError for a missing dataset or checkpoint, a checkpoint that is not a TAE, or bad options.
EncodeReport encode_dataset(const EncodeOptions& options);

}  // namespace reel::trainer
