// The recipe checks that span several keys (see trainer/internal/recipe_context.h).
#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "model/layers.h"
#include "model/text_encoder_types.h"
#include "trainer/internal/recipe_context.h"
#include "trainer/internal/recipe_text.h"

namespace reel::trainer::detail {
namespace {

namespace fs = std::filesystem;

void check_divides(const Context& ctx, const std::string& section, int64_t dim, int64_t heads) {
  if (dim % heads == 0) return;
  std::string heads_key = section + ".heads", dim_key = section + ".dim";
  fail(ctx.at({heads_key.c_str(), dim_key.c_str()}), ": key '", heads_key, "' = ", heads, " does not divide ", dim_key,
       " = ", dim, "; choose heads so that dim % heads == 0");
}

}  // namespace

void check_shapes(const Recipe& r, const Context& ctx, bool check_paths) {
  const ModelSection& m = r.model;
  check_divides(ctx, "model", m.dim, m.heads);
  for (size_t i = 0; i < m.text_encoders.size(); ++i) {
    const TextEncoderSection& enc = m.text_encoders[i];
    std::string path = cat("model.text_encoders.", i);
    if (enc.head_dim == 0) check_divides(ctx, path, enc.dim, enc.heads);
    if (enc.ngram > 0 && enc.ngram % 2 == 0) {
      std::string key = path + ".ngram";
      fail(ctx.at({key.c_str()}), ": key '", key, "' = ", enc.ngram,
           " must be 0 (no n-gram convolution) or odd (a window centred on each byte), e.g. 5");
    }
    try {
      model::validate(enc.type, {enc.dim, enc.depth, enc.heads, enc.max_len, enc.ngram, enc.ffn_dim, enc.head_dim,
                                 enc.vocab});
    } catch (const UserError& e) {
      std::string key = path + ".type";
      fail(ctx.at({key.c_str(), path.c_str()}), ": ", path, ": ", e.what());
    }
    if (check_paths && !enc.weights.empty() && !fs::exists(enc.weights)) {
      std::string key = path + ".weights";
      fail(ctx.at({key.c_str()}), ": key '", key, "' = '", enc.weights, "': no such checkpoint file or run directory",
           "; point it at a checkpoint whose model has a text slot named '", enc.name, "'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (m.text_encoders[j].name != enc.name) continue;
      std::string key = path + ".name";
      fail(ctx.at({key.c_str(), "model.text_encoders"}), ": key '", key, "' = '", enc.name,
           "' repeats model.text_encoders.", j, ".name; text encoder names must be unique");
    }
  }
  const BucketsSection& b = r.data.buckets;
  if (b.heights.size() != b.widths.size())
    fail(ctx.at({"data.buckets.widths", "data.buckets.heights"}), ": key 'data.buckets.widths' has ", b.widths.size(),
         " entries but data.buckets.heights has ", b.heights.size(), "; give one height and one width per aspect ratio");
  if (r.flow.loss == "data" && r.flow.prediction != "data")
    fail(ctx.at({"flow.loss"}), ": key 'flow.loss' = 'data' needs flow.prediction = 'data' (got '", r.flow.prediction,
         "'): only a model that predicts the clean data can be compared with it; set both or neither");
  for (const auto& [key, value] : {std::pair<const char*, double>{"flow.frame_times", r.flow.frame_times},
                                   {"sample.stagger", r.sample.stagger}, {"eval.stagger", r.eval.stagger}}) {
    if (value > 0 && !m.frame_time)
      fail(ctx.at({key}), ": key '", key, "' = ", value, " gives the frames of a clip different noise levels, which ",
           "only a model with model.frame_time: true can read; set model.frame_time=true (a new parameter, so a new ",
           "run) or ", key, "=0");
  }
  const ParallelSection& par = r.parallel;
  if (par.dp_shard == 0)
    fail(ctx.at({"parallel.dp_shard"}), ": key 'parallel.dp_shard' = 0 must be >= 1, or -1 for the ranks left over");
  if (m.heads % par.tp != 0)
    fail(ctx.at({"parallel.tp", "model.heads"}), ": key 'parallel.tp' = ", par.tp, " does not divide model.heads = ",
         m.heads, "; tensor parallelism splits the heads, pick a tp that divides them");
  const int64_t ffn = m.ffn_dim > 0 ? m.ffn_dim : model::swiglu_hidden_dim(m.dim);
  if (ffn % par.tp != 0)
    fail(ctx.at({"parallel.tp", "model.ffn_dim"}), ": key 'parallel.tp' = ", par.tp, " does not divide the FFN width ",
         ffn, " (model.ffn_dim", m.ffn_dim > 0 ? "" : " = 0: automatic from model.dim",
         "); tensor parallelism splits the hidden units, pick a tp or ffn_dim that fits");
  if (par.cp_mode == "ulysses" && m.heads % (par.cp * par.tp) != 0)
    fail(ctx.at({"parallel.cp", "parallel.cp_mode"}), ": key 'parallel.cp' = ", par.cp,
         " with cp_mode 'ulysses' needs model.heads / tp = ", m.heads, " / ", par.tp,
         " divisible by cp (Ulysses exchanges heads for sequence); use cp_mode allgather_kv or ring, or another cp");
  if (m.time_freq_dim % 2 != 0)
    fail(ctx.at({"model.time_freq_dim"}), ": key 'model.time_freq_dim' = ", m.time_freq_dim,
         " must be even (half sines, half cosines)");

  const char* axis_names[3] = {"frames", "height", "width"};
  const char* max_keys[3] = {"model.max_frames", "model.max_height", "model.max_width"};
  const int64_t maxes[3] = {m.max_frames, m.max_height, m.max_width};
  std::string patch = cat("model.patch = [", m.patch[0], ", ", m.patch[1], ", ", m.patch[2], "]");
  for (int a = 0; a < 3; ++a) {
    if (maxes[a] % m.patch[a] != 0)
      fail(ctx.at({max_keys[a], "model.patch"}), ": key '", max_keys[a], "' = ", maxes[a],
           " is not a multiple of the ", axis_names[a], " patch size ", m.patch[a], " (", patch, ")");
  }

  // sample.bucket: "FxHxW", within the position tables and a whole number of patches.
  const std::string& bucket = r.sample.bucket;
  std::string bucket_at = ctx.at({"sample.bucket"});
  std::vector<int64_t> dims;
  for (size_t start = 0;;) {
    size_t x = bucket.find('x', start);
    std::optional<int64_t> v = parse_int(bucket.substr(start, x == std::string::npos ? x : x - start));
    dims.push_back(v && *v >= 1 ? *v : 0);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  if (dims.size() != 3 || std::count(dims.begin(), dims.end(), 0) > 0)
    fail(bucket_at, ": key 'sample.bucket' = '", bucket,
         "' must be FRAMESxHEIGHTxWIDTH with three integers >= 1, e.g. '8x16x16'");
  // A latent model (in_channels != 3) samples the latents of this pixel shape: its TAE, known only
  // from the data, maps the shape, so the shape is checked when sampling.
  for (int a = 0; a < 3 && m.in_channels == 3; ++a) {
    if (dims[a] > maxes[a])
      fail(ctx.at({"sample.bucket", max_keys[a]}), ": key 'sample.bucket' = '", bucket, "' has ", axis_names[a], " ",
           dims[a], ", more than ", max_keys[a], " = ", maxes[a], " covers");
    if (a > 0 && dims[a] % m.patch[a] != 0)  // frames need not be: the model pads them by replication
      fail(bucket_at, ": key 'sample.bucket' = '", bucket, "' has ", axis_names[a], " ", dims[a],
           ", not a multiple of the ", axis_names[a], " patch size ", m.patch[a], " (", patch, ")");
  }

  if (r.trainer.min_lr > r.trainer.lr)
    fail(ctx.at({"trainer.min_lr", "trainer.lr"}), ": key 'trainer.min_lr' = ", format_double(r.trainer.min_lr),
         " is larger than trainer.lr = ", format_double(r.trainer.lr),
         "; the schedule decays from lr to min_lr, so min_lr must be <= lr");

  if (check_paths) {
    std::error_code ec;
    if (!r.init_from.empty() && !fs::exists(r.init_from, ec)) {
      fail(ctx.at({"init_from"}), ": key 'init_from' = '", r.init_from, "': no such checkpoint file or run directory",
           "; point it at the previous stage's checkpoint (or its run.dir)");
    }
    if (!fs::is_directory(r.data.dir, ec)) {
      bool exists = fs::exists(r.data.dir, ec);
      fail(ctx.at({"data.dir"}), ": key 'data.dir' = '", r.data.dir, "': ",
           exists ? "is not a directory" : "no such directory",
           fs::path(r.data.dir).is_relative() ? cat(" (relative to the working directory ", fs::current_path(ec).string(), ")") : "",
           "; create it with `reel data synth --out ", r.data.dir, "` or point data.dir at a dataset");
    }
    if (!r.data.text_cache.empty() && !fs::is_directory(r.data.text_cache, ec)) {
      fail(ctx.at({"data.text_cache"}), ": key 'data.text_cache' = '", r.data.text_cache, "': no such directory",
           "; build the cache with `reel data encode-text --model RECIPE --in ", r.data.dir, " --out ",
           r.data.text_cache, "`, or remove the key");
    }
  }
}

}  // namespace reel::trainer::detail
