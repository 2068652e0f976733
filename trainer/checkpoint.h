// Checkpoints: one HDF5 file per step holding named tensors and metadata strings, plus the
// run-directory bookkeeping (step_<N>.h5 files, the `latest` pointer, pruning).
//
// On-disk format "reel-ckpt-1" (HDF5, any HDF5 >= 1.10 reader, e.g. h5py, can open it):
//
//   /                            file (root group) attributes:
//     format   string            "reel-ckpt-1"; any other value is refused by this build
//     step     int64             Checkpoint::step
//     version  string            reel::version() of the writer
//     commit   string            reel::git_commit() of the writer
//     created  string            UTC time the write started, ISO 8601 ("2024-05-01T12:34:56Z")
//   /<tensor name>               one dataset per Checkpoint::tensors entry, at its name used as an
//                                HDF5 path: "model/blocks.0.attn.qkv.weight" is dataset
//                                "blocks.0.attn.qkv.weight" in group "/model" ('/' makes groups,
//                                '.' stays in the leaf name). Dataspace = the tensor's shape
//                                (scalar for a 0-dim tensor, a 0 extent for an empty one); layout
//                                contiguous, uncompressed, row-major (C order), little-endian.
//                                Element types: float32 -> IEEE F32LE, float64 -> F64LE,
//                                int64/int32/int16/int8 -> STD I64LE/I32LE/I16LE/I8LE,
//                                uint8 and bool (0/1) -> STD U8LE, bfloat16 and float16 -> STD
//                                U16LE holding the raw 16-bit patterns (bit-exact, no conversion).
//     dtype    string            torch dtype name: float32 float64 float16 bfloat16 int64 int32
//                                int16 int8 uint8 bool
//     shape    int64[ndim]       the tensor's sizes (an empty array for a 0-dim tensor)
//     checksum uint64            CRC-64/XZ (see crc64 below) of the tensor's bytes, row-major,
//                                little-endian, i.e. exactly the bytes of the dataset
//   /meta/<key>                  one dataset per Checkpoint::meta entry (a key with '/' makes
//                                subgroups, as for tensors): scalar, fixed-length string of
//                                max(1, bytes) bytes, NULLPAD, UTF-8 cset; the value is any byte
//                                string (large ones, embedded NULs and non-UTF-8 bytes round-trip)
//     length   uint64            the value's length in bytes (an empty value is stored as 1 NUL)
//     checksum uint64            CRC-64/XZ of the value's bytes
//
// Tensor names are therefore '/'-separated paths of non-empty components other than "." and
// "..", none a prefix-path of another ("a" and "a/b" cannot both exist), and none under "meta".
//
// Why this layout: every logical tensor is stored whole, contiguous and unchunked under its own
// name, so many ranks can write one file, each its own hyperslabs (save_checkpoint_sharded,
// trainer/checkpoint_sharded.h), and a checkpoint written on one mesh or world size loads on any
// other. CRC-64 is used (not FNV) because CRCs of consecutive byte ranges combine (crc64_combine),
// so each rank checksums the byte runs it writes and the runs' CRCs make the tensor's without
// gathering it; the same property lets crc64 run in parallel over chunks here.
//
// Thread-safety: HDF5 (Debian's parallel build) is not thread-safe, so at most one thread of the
// process may be in these functions (or any other HDF5 call) at a time.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/torch_compat.h"

namespace reel::trainer {

constexpr const char* kCheckpointFormat = "reel-ckpt-1";

struct Checkpoint {
  int64_t step = 0;
  // "model/blocks.0.attn.qkv.weight", "optim/<param>/exp_avg", "ema/...", "rng/...". Any device
  // and layout may be saved (written as a contiguous CPU copy); loaded tensors are contiguous,
  // on the CPU, own their storage. Dtypes: float32 float64 float16 bfloat16 int64 int32 int16
  // int8 uint8 bool.
  std::map<std::string, torch::Tensor> tensors;
  // "recipe" (the resolved YAML), "data_position" (JSON), "rng", ...: free-form byte strings.
  std::map<std::string, std::string> meta;
  // The file it was loaded from (set by load_checkpoint; empty for one built in memory). Not
  // saved; named in the errors of load_module_state / load_adamw_state.
  std::string source;
};

// Writes `ckpt` to `path` atomically (one process; see checkpoint_sharded.h for many): the file is written under a temporary name in the same
// directory ("<path>.tmp.<pid>"), flushed, closed, fsynced and renamed over `path`, so nothing
// partial is ever under `path`. Creates the parent directories. Throws UserError naming the path
// (and the tensor or key) for: an unwritable directory or full disk, an invalid or conflicting
// name, an unsupported dtype; the temporary file is removed then.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);

// Reads the whole file and verifies every checksum. Throws UserError naming the path and what is
// wrong for: a missing file; a file that is not HDF5 or is truncated/corrupt ("truncated or
// corrupt HDF5 file ... the write was probably interrupted; use an earlier checkpoint"); a
// missing or different `format`; a dataset whose dtype/shape attributes disagree with its data;
// a checksum mismatch (names the tensor or meta key).
Checkpoint load_checkpoint(const std::string& path);

// Model averaging (Movie Gen averages fine-tuned checkpoints): every "model/..." and "ema/..."
// tensor is the mean of the inputs' (computed in float64, stored in the input's dtype; a non-float
// tensor is the first input's); optimizer state and RNG are dropped, meta is the first input's
// without "data_position" (an average is a starting point, not a resumable run) plus
// "averaged_from" (the sources, one per line); step is the largest input step. UserError naming
// the tensor and both files when a tensor is missing from an input or its shape differs, or for
// fewer than 2 inputs.
Checkpoint average_checkpoints(const std::vector<Checkpoint>& inputs);

struct TensorInfo {
  std::string name;            // "model/blocks.0.attn.qkv.weight"
  std::vector<int64_t> shape;  // empty for a 0-dim tensor
  std::string dtype;           // "float32", "bfloat16", ...
};
struct CheckpointInfo {
  int64_t step = 0;
  std::map<std::string, std::string> meta;  // checksums verified
  std::vector<TensorInfo> tensors;          // sorted by name
  std::string version, commit, created;     // of the writer
};

// Reads only the file attributes, the meta strings and each tensor's name/shape/dtype (not the
// tensor data, whose checksums are therefore not verified). Same errors as load_checkpoint for
// missing, truncated, foreign or mismatched files. For `reel ckpt inspect` and cheap validation.
CheckpointInfo inspect_checkpoint(const std::string& path);

// Copies the tensors named "<prefix><name>" into `module`'s parameters and buffers (recursive
// names, as named_parameters()/named_buffers() give them), in place and without autograd, so
// tensors held elsewhere (an optimizer) stay valid. Converts dtype and device as copy_ does.
// All or nothing: every parameter/buffer must be present with the same shape and no other name
// may be under `prefix`, otherwise UserError listing every missing and unexpected name and every
// shape mismatch ("model/blocks.0.attn.qkv.weight: checkpoint (384,128) vs model (384,256)"),
// and the module is left unchanged.
void load_module_state(torch::nn::Module& module, const Checkpoint& ckpt, const std::string& prefix);

// Adds every named parameter and buffer of `module` as "<prefix><name>": a detached copy on the
// CPU (never aliasing the module's storage). Replaces entries of the same name.
void add_module_state(const torch::nn::Module& module, const std::string& prefix, Checkpoint& ckpt);

// AdamW state, by parameter name: "optim/<param name>/step" (int64, 0-dim), ".../exp_avg",
// ".../exp_avg_sq" and, with amsgrad, ".../max_exp_avg_sq" (each a CPU copy, the parameter's
// shape and dtype). Names are those of module.named_parameters(); every parameter the optimizer
// holds (in any number of param groups, any order) must be one of the module's (REEL_CHECK).
// A parameter with no state yet (never stepped, or not held by the optimizer) has no entries.
// Hyperparameters (lr, betas, ...) are not stored: they come from the recipe.
void add_adamw_state(const torch::optim::AdamW& opt, const torch::nn::Module& module, Checkpoint& ckpt);

// The key under which an optimizer keeps `param`'s state (opt.state()), and that state, or null
// before the parameter's first step.
compat::OptimizerStateKey adamw_state_key(const torch::Tensor& param);
const torch::optim::AdamWParamState* adamw_param_state(const torch::optim::AdamW& opt, const torch::Tensor& param);
// Where a parameter's AdamW state lives in a checkpoint: "optim/<name>/<field>".
inline constexpr const char* kOptimPrefix = "optim/";
// One parameter's entries as add_adamw_state lays them out ("optim/<name>/step", "/exp_avg",
// "/exp_avg_sq"), from whole tensors (copied to the CPU): for state kept elsewhere (FSDP shards).
void add_adamw_entries(const std::string& name, int64_t step, const torch::Tensor& exp_avg,
                       const torch::Tensor& exp_avg_sq, Checkpoint& ckpt);

// Restores the state add_adamw_state stored, bit-identically: a parameter with entries gets a
// fresh state (copied to the parameter's device and dtype); one without entries has any existing
// state removed, so the optimizer ends as it was saved. UserError (listing all problems, state
// unchanged) for: entries for a name that is not a parameter of `module` or not held by `opt`,
// an incomplete entry (e.g. exp_avg without exp_avg_sq), a shape mismatch, a non-int64 step.
void load_adamw_state(torch::optim::AdamW& opt, const torch::nn::Module& module, const Checkpoint& ckpt);

// Run directory: checkpoints live at <run_dir>/checkpoints/step_<N>.h5 (N zero-padded to 8
// digits, more digits past 99,999,999), and <run_dir>/checkpoints/latest is a text file holding
// the file name ("step_00000500.h5\n") of the newest complete checkpoint.
std::string checkpoint_path(const std::string& run_dir, int64_t step);

// Points `latest` at `checkpoint_file` (a file name, or a path whose file name is used), which
// must exist in <run_dir>/checkpoints; call it after save_checkpoint returned. Replaces `latest`
// atomically (write_file_atomic). UserError if the file is not there.
void mark_latest(const std::string& run_dir, const std::string& checkpoint_file);

// The path of the checkpoint `latest` names. If `latest` is missing or unreadable, or names a
// file that is missing or fails inspect_checkpoint, the newest step_*.h5 that passes is returned
// instead, with a log_warn naming each file skipped and why. UserError naming the run dir if no
// checkpoint passes. With verify_data, passing means load_checkpoint succeeds: every tensor read
// and its checksum checked (a flipped byte is caught; the file is read twice, once here).
std::string resolve_latest(const std::string& run_dir, bool verify_data = false);

// What a user may pass as --ckpt: a checkpoint file; a `latest` pointer file; a checkpoints
// directory or a run directory (both meaning their latest). Returns the checkpoint file's path,
// resolved as resolve_latest does for the last three.
std::string resolve_checkpoint_argument(const std::string& path);

// Deletes all but the newest `keep_last` complete checkpoints (keep_last <= 0: keeps all). A file
// counts as complete when it passes inspect_checkpoint; one that does not (corrupt, or written by
// an incompatible version) is never deleted nor counted, and is named in a warning. Never deletes
// the file `latest` names. A file that cannot be deleted is named in a warning, not an error.
// Temporary files of interrupted writes ("*.h5.tmp.<pid>") are left alone. With keep_every > 0,
// a checkpoint whose step is a multiple of keep_every is never deleted either (milestones, as
// for model averaging or evaluation runs); it still counts as one of the newest keep_last.
void prune_checkpoints(const std::string& run_dir, int keep_last, int64_t keep_every = 0);

// Deletes the temporaries of interrupted checkpoint writes ("step_<N>.h5.tmp.<pid>") in the run's
// checkpoints directory and returns their paths. Call it only where no write can be under way
// (a resuming run, before it trains).
std::vector<std::string> remove_interrupted_writes(const std::string& run_dir);

// CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones; check("123456789") =
// 0x995DC9BBDF1939FA), the `checksum` attribute's algorithm. Chainable like zlib's crc32:
// crc64(b, nb, crc64(a, na)) == crc64(a ++ b). Runs in parallel over 4 MiB chunks (at::parallel_for).
uint64_t crc64(const void* data, size_t size, uint64_t crc = 0);
// crc64 of (A ++ B) from crc_a = crc64(A), crc_b = crc64(B) and B's length: for per-rank slices.
uint64_t crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t size_b);

}  // namespace reel::trainer
