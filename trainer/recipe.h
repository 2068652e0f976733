// The training recipe: one YAML file per stage, parsed once and strictly checked into the typed
// structs below. Nothing below the parser reads YAML; components take these sections (or
// Options built from them).
//
// A recipe file is a map of sections; every key is optional and takes the default written
// here. YAML keys are the field names ("trainer: {steps: 100}"). An unknown key, a value of
// the wrong type, an out-of-range value or an impossible shape (dim % heads != 0, a sample
// bucket larger than the position tables, ...) is a reel::UserError that names the file, the
// line and column, the dotted key, the value and what is allowed.
//
// Relative paths in a recipe (run.dir, data.dir) are relative to the current working
// directory of the process, not to the recipe file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace reel::trainer {

// Where a run writes checkpoints, metrics and samples.
struct RunSection {
  std::string dir = "runs/default";  // run directory (created by the trainer); must not be empty
  std::string name = "";             // free-form label for logs and metrics; "" = none
};

// One text encoder feeding the denoiser's cross-attention.
struct TextEncoderSection {
  std::string name = "byte";  // unique among model.text_encoders; must not be empty
  std::string type = "byte";  // byte (Reel's byte encoder), byt5, ul2 or metaclip (model/text_encoder_types.h)
  int64_t dim = 128;          // width, >= 1, divisible by heads unless head_dim is set
  int64_t depth = 2;          // transformer layers, >= 1
  int64_t heads = 4;          // attention heads, >= 1
  int64_t max_len = 96;       // longest caption in tokens (bytes for byte), >= 1
  int64_t ngram = 0;          // byte only: n-gram convolution width before the layers, 0 (none) or odd
  int64_t ffn_dim = 0;        // feed-forward width, >= 0; 0 = 4 * dim (byte: must stay 0)
  int64_t head_dim = 0;       // byt5, ul2: width per head, >= 0; 0 = dim / heads
  int64_t vocab = 0;          // byt5, ul2, metaclip: embedding rows, >= 0; 0 = the type's default
  std::string input = "caption";  // caption (the whole text) or quoted (only text between double quotes)
  std::string weights;        // "" or a checkpoint (file or run dir) whose slot of this name gives the
                              // encoder's weights at the start of a fresh run (trainer/init_from.h)
  bool trainable = true;      // false = frozen (no gradients, no optimizer state)
};

// The temporal autoencoder's architecture (model.name: tae; model/tae.h).
struct TaeSection {
  int64_t latent_channels = 16;                   // >= 1
  std::vector<int64_t> channels = {32, 64, 64};   // width per resolution level, >= 1 entries, each
                                                  // a multiple of norm_groups
  int64_t blocks = 1;                             // residual blocks per level, >= 1
  std::vector<int64_t> compression = {4, 4, 4};   // t, h, w: powers of 2, at most 2^(levels - 1)
  bool attention = true;                          // spatial + temporal attention at the lowest level
  int64_t norm_groups = 16;                       // GroupNorm groups, >= 1
};

// The denoiser (model.name: t2v) or the temporal autoencoder (model.name: tae). Shapes are
// checked here; the name is checked by the model registry.
struct ModelSection {
  std::string name = "t2v";              // model registry name; must not be empty
  int64_t in_channels = 3;               // channels of the (pixel or latent) input, >= 1
  std::vector<int64_t> patch = {1, 2, 2};  // patch size (frames, height, width): exactly 3 ints >= 1
  int64_t dim = 128;                     // transformer width, >= 1, divisible by heads
  int64_t depth = 4;                     // transformer blocks, >= 1
  int64_t heads = 4;                     // attention heads, >= 1
  int64_t ffn_dim = 0;                   // MLP hidden width, >= 0; 0 = automatic (model's choice)
  // Largest clip (frames, height, width, in input pixel/latent units) the position tables
  // cover; each >= 1 and a multiple of the matching patch size.
  int64_t max_frames = 8;
  int64_t max_height = 16;
  int64_t max_width = 16;
  int64_t time_freq_dim = 256;           // sinusoidal timestep embedding width, even, >= 2
  bool pooled_text = false;              // also feed the mean text token to adaLN (not in Movie Gen)
  bool qk_norm = false;                  // RMS-normalise self-attention's q and k per head (no weights)
  bool frame_time = false;               // a noise-level embedding per frame (flow.frame_times, sample.stagger)
  bool fractional_positions = false;     // h/w position rows by place as a fraction of the frame (not in Movie Gen)
  std::vector<TextEncoderSection> text_encoders = {TextEncoderSection{}};  // >= 1 entry, names unique
  TaeSection tae;                        // used when name is "tae"
};

// The temporal autoencoder's loss weights (trainer/tae_loss.h); used when model.name is "tae".
struct TaeLossSection {
  double l1 = 1.0;                // pixel L1 (on [-1, 1]), >= 0
  double l2 = 0.0;                // pixel MSE (on [-1, 1]), >= 0
  double gradient = 1.0;          // L1 of the h, w and t finite differences (structure), >= 0
  double kl = 1e-6;               // KL to N(0, I), >= 0
  double outlier = 0.0;           // outlier penalty (Movie Gen adds it in a last stage), >= 0
  double outlier_r = 3.0;         // ... on values more than r standard deviations out, > 0
  double adversarial = 0.0;       // the 3D patch discriminator's generator loss, >= 0; 0 = none
  int64_t adversarial_start = 0;  // first step the discriminator trains and its loss counts, >= 0
};

// The bucket grid `reel data ingest --recipe` cuts media into (data/ingest.h): every size
// (one per aspect ratio) crossed with every clip length, plus 1-frame image buckets of every
// size. Movie Gen's is 5 aspect ratios x 5 durations (recipes/tae/01_tae.yaml).
struct BucketsSection {
  int64_t fps = 8;                          // frame rate clips are resampled to, >= 1
  std::vector<int64_t> heights = {16, 16, 24};  // frame height per aspect ratio, >= 1 entries
  std::vector<int64_t> widths = {16, 24, 16};   // frame width per aspect ratio, as many as heights
  std::vector<int64_t> frames = {8};            // clip lengths in frames at fps, each >= 2
};

// The dataset and its loader.
struct DataSection {
  std::string dir = "runs/data/synth";  // dataset root holding train/ and val/; must exist when
                                        // the recipe is loaded (unless check_paths is false)
  int64_t batch_size = 16;              // global samples per micro-batch, >= 1
  int64_t workers = 2;                  // loader threads, >= 0 (0 = load on the training thread)
  int64_t prefetch = 4;                 // batches prepared ahead, >= 1
  int64_t batch_budget = 0;             // > 0: frames x height x width elements per global batch
                                        // instead of batch_size (data/loader.h), >= 0
  double image_ratio = -1;              // image (1-frame) batches per video batch in an epoch
                                        // (Movie Gen's 768 px stage: 0.1); < 0: as the data holds them
  BucketsSection buckets;               // what `reel data ingest` produces
  std::string text_cache;               // non-empty: a text cache (`reel data encode-text`) whose
                                        // outputs stand in for the frozen text encoders it holds
                                        // (data/text_cache.h); must exist when the recipe is loaded
};

// Optimization, precision and the training loop's cadence.
struct TrainerSection {
  int64_t steps = 1000;        // optimizer steps, >= 1
  int64_t grad_accum = 1;      // micro-batches per optimizer step, >= 1
  double lr = 1e-3;            // peak learning rate, > 0
  double min_lr = 1e-4;        // final learning rate of the cosine schedule, in [0, lr]
  int64_t warmup_steps = 50;   // linear warmup from 0 to lr, >= 0
  std::string schedule = "cosine";  // "cosine" (lr -> min_lr after warmup) | "constant"
  double weight_decay = 0.01;  // AdamW decoupled weight decay, >= 0
  double beta1 = 0.9;          // AdamW beta1, in [0, 1)
  double beta2 = 0.99;         // AdamW beta2, in [0, 1)
  double eps = 1e-8;           // AdamW epsilon, > 0
  double grad_clip = 1.0;      // max global gradient norm, >= 0; 0 = no clipping
  std::string dtype = "fp32";  // compute dtype: "fp32" | "bf16"
  std::string device = "cpu";  // "cpu" | "cuda": the first visible GPU, one process (the video models)
  double ema_decay = 0.0;      // EMA of the weights, in [0, 1); 0 = no EMA
  int64_t threads = 0;         // intra-op CPU threads, >= 0; 0 = every core (split among local ranks)
  int64_t batch_threads = 1;   // threads that each run an equal part of every micro-batch on their
                               // own copy of the model, with threads / batch_threads intra-op threads
                               // each; gradients summed in a fixed order. >= 0; 0 = one per intra-op
                               // thread (1 under FSDP, which it cannot be combined with)
  int64_t log_every = 10;      // steps between progress lines, >= 1
  int64_t val_every = 200;     // steps between validation passes, >= 1
  int64_t val_samples = 32;    // validation samples per pass, >= 1
  int64_t ckpt_every = 500;    // steps between checkpoints, >= 1
  int64_t keep_last = 3;       // checkpoints kept on disk, >= 0; 0 = keep all
  bool async_save = false;     // checkpoints written by a background thread while training goes on
  int64_t keep_every = 0;      // also keep for good every checkpoint whose step is a multiple, >= 0; 0 = none
  int64_t max_nonfinite = 3;   // a non-finite loss or gradient norm skips the update; this many in a row
                               // stop the run (checkpoints left intact), >= 1
  // Lowering the LR when the validation loss plateaus (Movie Gen's 768 px stage: 6e-5 -> 1e-5).
  int64_t plateau_patience = 0;     // validations in a row without an improvement of the best validation
                                    // loss by plateau_threshold (relative) before the LR is multiplied by
                                    // plateau_factor, >= 0; 0 = never. The LR does not go below min_lr.
  double plateau_factor = 0.5;      // in (0, 1)
  double plateau_threshold = 1e-3;  // relative improvement that counts, in [0, 1)
};

// Rectified-flow training objective.
struct FlowSection {
  double sigma_min = 1e-5;       // noise floor of the flow path, in [0, 1)
  double frame_correlation = 0.0;  // noise correlation between a clip's frames, in [0, 1); 0 = Movie Gen
  std::string loss = "velocity";        // where the loss compares: "velocity" | "data" (needs prediction: data)
  std::string prediction = "velocity";  // what the network outputs: "velocity" (Movie Gen) | "data" (x1)
  double temporal_weight = 0.0;  // weight of the extra loss on frame-to-frame differences, >= 0; 0 = Movie Gen
  double t_mean = 0.0;           // mean of the logit-normal timestep distribution (any finite value)
  double t_std = 1.0;            // std of the logit-normal timestep distribution, > 0
  double caption_dropout = 0.1;  // probability of training with an empty caption (for CFG), in [0, 1)
  // Probability that a clip draws its own time for every frame (diffusion forcing) instead of one
  // for all, in [0, 1]; > 0 needs model.frame_time. 0 = Movie Gen.
  double frame_times = 0.0;
};

// The parallel layout (parallel/parallel_dims.h) and its options. dp_replicate x dp_shard x cp
// x tp must equal the number of ranks. `reel train` of a t2v model runs every such mesh (replicas,
// FSDP, HSDP, tensor + sequence parallel, context parallel); the TAE trainer runs FSDP or replicas
// and refuses cp > 1 and tp > 1 before any work.
struct ParallelSection {
  int64_t dp_replicate = 1;          // HSDP replicas, >= 1
  int64_t dp_shard = -1;             // FSDP shards, >= 1, or -1 = the ranks left over
  bool reshard_after_forward = true;  // FSDP: release each block's gathered parameters after its
                                      // forward (gather again in backward); false keeps them
  int64_t cp = 1;                    // context-parallel ranks, >= 1
  std::string cp_mode = "allgather_kv";  // "allgather_kv" (Movie Gen) | "ulysses" (heads % cp == 0) | "ring"
  int64_t tp = 1;                    // tensor-parallel ranks, >= 1; model.heads % tp == 0
  bool sequence_parallel = false;    // norms and residuals hold 1/tp of the sequence
  std::string activation_checkpointing = "none";  // "none" | "full" (per block)
  double timeout_s = 600;            // a collective waited on longer aborts the job (watchdog), > 0
};

// `reel sample` defaults.
struct SampleSection {
  int64_t steps = 50;              // ODE solver steps, >= 1
  double cfg = 7.5;                // classifier-free guidance scale, >= 0 (1 = no guidance)
  int64_t fps = 8;                 // frame rate written to the MP4, >= 1
  // Clip shape "FRAMESxHEIGHTxWIDTH", each >= 1, a multiple of model.patch and within
  // model.max_frames/max_height/max_width.
  std::string bucket = "8x16x16";
  int64_t scale = 8;               // upscaling factor of the MP4 for viewing, >= 1
  // Frame after frame: frame f's schedule starts stagger x steps x f / (F - 1) steps after frame
  // 0's (the last frame lags by stagger x steps), >= 0; > 0 needs model.frame_time. 0 = all at once.
  double stagger = 0.0;
};

// `reel eval` defaults.
struct EvalSection {
  int64_t prompts = 64;  // prompts evaluated, >= 1
  int64_t seed = 1234;   // seed of the evaluation noise, >= 0
  int64_t steps = 50;    // ODE solver steps, >= 1
  double cfg = 7.5;      // classifier-free guidance scale, >= 0
  double stagger = 0.0;  // as sample.stagger
};

// What `reel plan` sizes (trainer/plan.h); training ignores it.
struct PlanSection {
  std::string clip;                             // "FRAMESxHEIGHTxWIDTH" pixel clip, "" = the largest of data.buckets
  std::vector<int64_t> compression = {1, 1, 1};  // t, h, w pixels per latent cell of the TAE the data was
                                                // encoded with, each >= 1 (Movie Gen: 8, 8, 8); 1 = pixels
  std::string gpu = "h100";                     // h100 | h200 (--gpu overrides)
};

struct Recipe {
  std::string source;  // file path it came from ("<string>" if parsed from text); not a key,
                       // ignored by operator==
  int64_t seed = 0;    // seed of initialization, data order and noise, >= 0
  // A checkpoint (file or run directory: its latest) whose model weights start this run, as a
  // stage starts from the one before (trainer/init_from.h for the rules); "" = fresh weights.
  // Ignored when --resume finds a checkpoint of this run.
  std::string init_from;
  RunSection run;
  ModelSection model;
  DataSection data;
  TrainerSection trainer;
  FlowSection flow;
  ParallelSection parallel;
  SampleSection sample;
  EvalSection eval;
  TaeLossSection tae_loss;
  PlanSection plan;
};

// Parses the recipe file at `path`, applies `overrides`, checks everything and returns the
// typed recipe (source = path).
//
// An override is "key.path=value": the value is parsed as YAML and replaces whatever the file
// has at that path ("trainer.steps=100", "run.dir=/tmp/x", "seed=3", "model.patch=[1,2,2]",
// "model.text_encoders.0.dim=64"); missing sections are created. Overrides apply in order, so a
// later one wins. A bad value set by an override is reported as
// "command line override 'trainer.steps=abc': ..." instead of file:line:col.
//
// Throws reel::UserError for: a missing or unreadable file (names the path), a YAML syntax
// error (file:line:col), an unknown or duplicated key (file:line:col, the dotted key, the valid
// keys at that level and a "did you mean" when one is close), a wrong type (key, expected type,
// the value), an out-of-range value or bad choice (key, value, allowed range or choices), an
// impossible shape (both keys and values), a missing data.dir directory (key and path), and a
// malformed override (names the override argument).
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

// As load_recipe, from text; `source_name` stands in for the path in messages and in
// Recipe::source. check_paths = false skips the check that data.dir exists.
Recipe parse_recipe_text(const std::string& yaml_text, const std::string& source_name,
                         const std::vector<std::string>& overrides = {}, bool check_paths = true);

// The fully resolved recipe as YAML: every key, defaults included, in declaration order.
// parse_recipe_text(to_yaml(r), ...) == r for every recipe r that passes the checks.
std::string to_yaml(const Recipe& recipe);

// Field-by-field equality of every key (doubles compared exactly); `source` is ignored.
bool operator==(const Recipe& a, const Recipe& b);
bool operator!=(const Recipe& a, const Recipe& b);

}  // namespace reel::trainer
