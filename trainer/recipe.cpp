// Recipe parsing: YAML text + command-line overrides -> a strictly checked Recipe, its YAML
// form, and equality. One schema (visit_fields) drives all of them; the checks that span several
// keys are in recipe_check.cpp.
#include "trainer/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/error.h"
#include "common/fs.h"
#include "trainer/internal/recipe_context.h"
#include "trainer/internal/recipe_text.h"

namespace reel::trainer {
namespace {

namespace fs = std::filesystem;

// ---- Small helpers -------------------------------------------------------------------------
using namespace detail;  // text helpers: trainer/internal/recipe_text.h

// ---- Constraints ---------------------------------------------------------------------------

constexpr double kInf = std::numeric_limits<double>::infinity();

// The interval a number must lie in.
struct Limit {
  double lo = -kInf, hi = kInf;
  bool lo_open = false, hi_open = false;

  bool contains(double x) const {
    return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  }
  std::string describe() const {
    if (hi == kInf) return lo == -kInf ? "any number" : cat(lo_open ? "> " : ">= ", format_double(lo));
    if (lo == -kInf) return cat(hi_open ? "< " : "<= ", format_double(hi));
    return cat("in ", lo_open ? "(" : "[", format_double(lo), ", ", format_double(hi), hi_open ? ")" : "]");
  }
};
Limit any_number() { return {}; }
Limit at_least(double lo) { return {lo, kInf, false, false}; }
Limit above(double lo) { return {lo, kInf, true, false}; }
Limit zero_to_below_one() { return {0.0, 1.0, false, true}; }

// What a string may be.
struct Text {
  bool allow_empty = true;
  std::vector<std::string> choices;  // empty = anything
};
Text any_text() { return {true, {}}; }
Text non_empty() { return {false, {}}; }
Text one_of(std::vector<std::string> choices) { return {false, std::move(choices)}; }

// A fixed-length list of integers.
struct IntList {
  size_t size;  // 0: any length >= 1
  Limit each;
};

// ---- The schema ----------------------------------------------------------------------------

// Every key of every section in declaration order, with its constraint. The visitors below
// (key lister, reader, writer, flattener) all walk this, so a field added here is parsed,
// checked, printed and compared everywhere. S is a section type, const or not. A visitor has
//   value(key, field, constraint)   a leaf: int64_t/double (Limit), bool (nullptr_t),
//                                   std::string (Text), std::vector<int64_t> (IntList)
//   section(key, sub)               a nested section
//   list(key, vector, min_size)     a list of sections
template <class V, class S>
void visit_fields(V& v, S& s) {
  using T = std::remove_const_t<S>;
  if constexpr (std::is_same_v<T, Recipe>) {
    v.value("seed", s.seed, at_least(0));
    v.value("init_from", s.init_from, any_text());
    v.section("run", s.run);
    v.section("model", s.model);
    v.section("data", s.data);
    v.section("trainer", s.trainer);
    v.section("flow", s.flow);
    v.section("parallel", s.parallel);
    v.section("sample", s.sample);
    v.section("eval", s.eval);
    v.section("tae_loss", s.tae_loss);
    v.section("plan", s.plan);
  } else if constexpr (std::is_same_v<T, PlanSection>) {
    v.value("clip", s.clip, any_text());
    v.value("compression", s.compression, IntList{3, at_least(1)});
    v.value("gpu", s.gpu, one_of({"h100", "h200"}));
  } else if constexpr (std::is_same_v<T, RunSection>) {
    v.value("dir", s.dir, non_empty());
    v.value("name", s.name, any_text());
  } else if constexpr (std::is_same_v<T, TextEncoderSection>) {
    v.value("name", s.name, non_empty());
    v.value("type", s.type, one_of({"byte", "byt5", "ul2", "metaclip"}));
    v.value("dim", s.dim, at_least(1));
    v.value("depth", s.depth, at_least(1));
    v.value("heads", s.heads, at_least(1));
    v.value("max_len", s.max_len, at_least(1));
    v.value("ngram", s.ngram, at_least(0));
    v.value("ffn_dim", s.ffn_dim, at_least(0));
    v.value("head_dim", s.head_dim, at_least(0));
    v.value("vocab", s.vocab, at_least(0));
    v.value("input", s.input, one_of({"caption", "quoted"}));
    v.value("weights", s.weights, any_text());
    v.value("trainable", s.trainable, nullptr);
  } else if constexpr (std::is_same_v<T, ModelSection>) {
    v.value("name", s.name, non_empty());
    v.value("in_channels", s.in_channels, at_least(1));
    v.value("patch", s.patch, IntList{3, at_least(1)});
    v.value("dim", s.dim, at_least(1));
    v.value("depth", s.depth, at_least(1));
    v.value("heads", s.heads, at_least(1));
    v.value("ffn_dim", s.ffn_dim, at_least(0));
    v.value("max_frames", s.max_frames, at_least(1));
    v.value("max_height", s.max_height, at_least(1));
    v.value("max_width", s.max_width, at_least(1));
    v.value("time_freq_dim", s.time_freq_dim, at_least(2));
    v.value("pooled_text", s.pooled_text, nullptr);
    v.value("qk_norm", s.qk_norm, nullptr);
    v.value("frame_time", s.frame_time, nullptr);
    v.value("fractional_positions", s.fractional_positions, nullptr);
    v.list("text_encoders", s.text_encoders, 1);
    v.section("tae", s.tae);
  } else if constexpr (std::is_same_v<T, TaeSection>) {
    v.value("latent_channels", s.latent_channels, at_least(1));
    v.value("channels", s.channels, IntList{0, at_least(1)});
    v.value("blocks", s.blocks, at_least(1));
    v.value("compression", s.compression, IntList{3, at_least(1)});
    v.value("attention", s.attention, nullptr);
    v.value("norm_groups", s.norm_groups, at_least(1));
  } else if constexpr (std::is_same_v<T, TaeLossSection>) {
    v.value("l1", s.l1, at_least(0.0));
    v.value("l2", s.l2, at_least(0.0));
    v.value("gradient", s.gradient, at_least(0.0));
    v.value("kl", s.kl, at_least(0.0));
    v.value("outlier", s.outlier, at_least(0.0));
    v.value("outlier_r", s.outlier_r, above(0));
    v.value("adversarial", s.adversarial, at_least(0.0));
    v.value("adversarial_start", s.adversarial_start, at_least(0));
  } else if constexpr (std::is_same_v<T, DataSection>) {
    v.value("dir", s.dir, non_empty());
    v.value("batch_size", s.batch_size, at_least(1));
    v.value("workers", s.workers, at_least(0));
    v.value("prefetch", s.prefetch, at_least(1));
    v.value("batch_budget", s.batch_budget, at_least(0));
    v.value("image_ratio", s.image_ratio, at_least(-1.0));
    v.section("buckets", s.buckets);
    v.value("text_cache", s.text_cache, any_text());
  } else if constexpr (std::is_same_v<T, BucketsSection>) {
    v.value("fps", s.fps, at_least(1));
    v.value("heights", s.heights, IntList{0, at_least(1)});
    v.value("widths", s.widths, IntList{0, at_least(1)});
    v.value("frames", s.frames, IntList{0, at_least(2)});
  } else if constexpr (std::is_same_v<T, TrainerSection>) {
    v.value("steps", s.steps, at_least(1));
    v.value("grad_accum", s.grad_accum, at_least(1));
    v.value("lr", s.lr, above(0));
    v.value("min_lr", s.min_lr, at_least(0));
    v.value("warmup_steps", s.warmup_steps, at_least(0));
    v.value("schedule", s.schedule, one_of({"cosine", "constant"}));
    v.value("weight_decay", s.weight_decay, at_least(0));
    v.value("beta1", s.beta1, zero_to_below_one());
    v.value("beta2", s.beta2, zero_to_below_one());
    v.value("eps", s.eps, above(0));
    v.value("grad_clip", s.grad_clip, at_least(0));
    v.value("dtype", s.dtype, one_of({"fp32", "bf16"}));
    v.value("device", s.device, one_of({"cpu", "cuda"}));
    v.value("ema_decay", s.ema_decay, zero_to_below_one());
    v.value("threads", s.threads, at_least(0));
    v.value("batch_threads", s.batch_threads, at_least(0));
    v.value("log_every", s.log_every, at_least(1));
    v.value("val_every", s.val_every, at_least(1));
    v.value("val_samples", s.val_samples, at_least(1));
    v.value("ckpt_every", s.ckpt_every, at_least(1));
    v.value("keep_last", s.keep_last, at_least(0));
    v.value("keep_every", s.keep_every, at_least(0));
    v.value("async_save", s.async_save, nullptr);
    v.value("max_nonfinite", s.max_nonfinite, at_least(1));
    v.value("plateau_patience", s.plateau_patience, at_least(0));
    v.value("plateau_factor", s.plateau_factor, Limit{0.0, 1.0, true, true});
    v.value("plateau_threshold", s.plateau_threshold, zero_to_below_one());
  } else if constexpr (std::is_same_v<T, FlowSection>) {
    v.value("sigma_min", s.sigma_min, zero_to_below_one());
    v.value("frame_correlation", s.frame_correlation, zero_to_below_one());
    v.value("loss", s.loss, one_of({"velocity", "data"}));
    v.value("prediction", s.prediction, one_of({"velocity", "data"}));
    v.value("temporal_weight", s.temporal_weight, at_least(0.0));
    v.value("t_mean", s.t_mean, any_number());
    v.value("t_std", s.t_std, above(0));
    v.value("caption_dropout", s.caption_dropout, zero_to_below_one());
    v.value("frame_times", s.frame_times, Limit{0.0, 1.0, false, false});
  } else if constexpr (std::is_same_v<T, ParallelSection>) {
    v.value("dp_replicate", s.dp_replicate, at_least(1));
    v.value("dp_shard", s.dp_shard, at_least(-1));  // 0 refused in check_recipe
    v.value("reshard_after_forward", s.reshard_after_forward, nullptr);
    v.value("cp", s.cp, at_least(1));
    v.value("cp_mode", s.cp_mode, one_of({"allgather_kv", "ulysses", "ring"}));
    v.value("tp", s.tp, at_least(1));
    v.value("sequence_parallel", s.sequence_parallel, nullptr);
    v.value("activation_checkpointing", s.activation_checkpointing, one_of({"none", "full"}));
    v.value("timeout_s", s.timeout_s, above(0));
  } else if constexpr (std::is_same_v<T, SampleSection>) {
    v.value("steps", s.steps, at_least(1));
    v.value("cfg", s.cfg, at_least(0));
    v.value("fps", s.fps, at_least(1));
    v.value("bucket", s.bucket, non_empty());  // shape checked in check_shapes
    v.value("scale", s.scale, at_least(1));
    v.value("stagger", s.stagger, at_least(0.0));
  } else if constexpr (std::is_same_v<T, EvalSection>) {
    v.value("prompts", s.prompts, at_least(1));
    v.value("seed", s.seed, at_least(0));
    v.value("steps", s.steps, at_least(1));
    v.value("cfg", s.cfg, at_least(0));
    v.value("stagger", s.stagger, at_least(0.0));
  } else {
    static_assert(!sizeof(T), "visit_fields: not a recipe section");
  }
}

// Lists the keys of one level, or (recursive = true) the dotted paths of every leaf below it,
// entries of section lists written as "<list>.N.<key>".
struct KeyLister {
  std::vector<std::string> keys;
  std::string prefix;
  bool recursive = false;

  template <class F, class C>
  void value(const char* key, const F&, const C&) { keys.push_back(join_path(prefix, key)); }
  template <class S>
  void section(const char* key, const S& s) { descend(key, join_path(prefix, key), s); }
  template <class S>
  void list(const char* key, const std::vector<S>&, size_t) { descend(key, join_path(prefix, key) + ".N", S{}); }

  template <class S>
  void descend(const char* key, const std::string& path, const S& s) {
    if (!recursive) return keys.push_back(key);
    std::string saved = prefix;
    prefix = path;
    visit_fields(*this, s);
    prefix = saved;
  }
};

template <class S>
std::vector<std::string> keys_of(const S& s) {
  KeyLister lister;
  visit_fields(lister, s);
  return lister.keys;
}

// ---- Reading -------------------------------------------------------------------------------


template <class S>
void read_section(Context& ctx, const std::string& path, const std::string& where, const YAML::Node& node,
                  S& s, bool null_ok);

// Rejects unknown and repeated keys in the map `node` of section `path`.
void check_keys(const Context& ctx, const std::string& path, const YAML::Node& node,
                const std::vector<std::string>& valid) {
  std::map<std::string, std::string> seen;  // key -> where
  for (YAML::const_iterator it = node.begin(); it != node.end(); ++it) {
    const YAML::Node& key = it->first;
    std::string name = key.IsScalar() ? key.Scalar() : show(key);
    std::string full = join_path(path, name);
    std::string where = ctx.where(full, key.Mark());
    if (std::find(valid.begin(), valid.end(), name) == valid.end()) {
      std::optional<std::string> guess = closest(name, valid);
      if (guess) {
        guess = join_path(path, *guess);
      } else {  // the right key in the wrong section?
        KeyLister all;
        all.recursive = true;
        const Recipe defaults;
        visit_fields(all, defaults);
        for (const std::string& p : all.keys)
          if (p.size() > name.size() && p.compare(p.size() - name.size() - 1, std::string::npos, "." + name) == 0)
            guess = p;
      }
      fail(where, ": unknown key '", full, "'", guess ? cat("; did you mean '", *guess, "'?") : std::string(";"),
           " valid ", path.empty() ? std::string("top-level keys") : cat("keys under '", path, "'"), ": ",
           join(valid, ", "));
    }
    auto [first, inserted] = seen.emplace(name, where);
    if (!inserted) fail(where, ": key '", full, "' is set twice (first at ", first->second, "); keep one");
  }
}

// Reads the keys of one map into the fields of one section (a visitor of visit_fields).
class Reader {
 public:
  Reader(Context& ctx, std::string path, const YAML::Node& map) : ctx_(ctx), path_(std::move(path)), map_(map) {}

  void value(const char* key, int64_t& field, const Limit& limit) {
    if (auto e = find(key)) field = to_int(e->value, e->path, e->where, limit);
  }

  void value(const char* key, double& field, const Limit& limit) {
    auto e = find(key);
    if (!e) return;
    std::optional<double> v = e->value.IsScalar() && !is_quoted(e->value) ? parse_double(e->value.Scalar()) : std::nullopt;
    if (!v) type_error(e->path, e->where, e->value, "a number");
    if (!limit.contains(*v))
      fail(e->where, ": key '", e->path, "' = ", e->value.Scalar(), " is out of range: must be ", limit.describe());
    field = *v;
  }

  void value(const char* key, bool& field, std::nullptr_t) {
    auto e = find(key);
    if (!e) return;
    std::optional<bool> v = e->value.IsScalar() && !is_quoted(e->value) ? parse_bool(e->value.Scalar()) : std::nullopt;
    if (!v) type_error(e->path, e->where, e->value, "true or false");
    field = *v;
  }

  void value(const char* key, std::string& field, const Text& text) {
    auto e = find(key);
    if (!e) return;
    if (!e->value.IsScalar()) {
      type_error(e->path, e->where, e->value,
                 e->value.IsNull() ? "a string (write '' for an empty one)" : "a string");
    }
    const std::string& v = e->value.Scalar();
    if (v.empty() && !text.allow_empty) fail(e->where, ": key '", e->path, "' must not be empty");
    if (!text.choices.empty() && std::find(text.choices.begin(), text.choices.end(), v) == text.choices.end()) {
      std::optional<std::string> guess = closest(v, text.choices);
      fail(e->where, ": key '", e->path, "' = '", v, "' is not one of: ", join(text.choices, ", "),
           guess ? cat("; did you mean '", *guess, "'?") : std::string());
    }
    field = v;
  }

  void value(const char* key, std::vector<int64_t>& field, const IntList& spec) {
    auto e = find(key);
    if (!e) return;
    std::string expected = spec.size ? cat("a list of ", spec.size, " integers") : "a list of one or more integers";
    if (!e->value.IsSequence()) type_error(e->path, e->where, e->value, expected);
    if (spec.size ? e->value.size() != spec.size : e->value.size() == 0)
      fail(e->where, ": key '", e->path, "' must be ", expected, ", got ", show(e->value), " with ", e->value.size(),
           " entries");
    std::vector<int64_t> out;
    for (size_t i = 0; i < e->value.size(); ++i) {
      std::string path = cat(e->path, ".", i);
      YAML::Node item = e->value[i];
      out.push_back(to_int(item, path, ctx_.where(path, item.Mark()), spec.each));
    }
    field = std::move(out);
  }

  template <class S>
  void section(const char* key, S& s) {
    if (auto e = find(key)) read_section(ctx_, e->path, e->where, e->value, s, /*null_ok=*/true);
  }

  template <class S>
  void list(const char* key, std::vector<S>& field, size_t min_size) {
    auto e = find(key);
    if (!e) return;
    if (!e->value.IsSequence())
      type_error(e->path, e->where, e->value, cat("a list of maps with keys ", join(keys_of(S{}), ", ")));
    if (e->value.size() < min_size)
      fail(e->where, ": key '", e->path, "' must have at least ", min_size, " entr", min_size == 1 ? "y" : "ies",
           ", got an empty list");
    std::vector<S> out(e->value.size());
    for (size_t i = 0; i < out.size(); ++i) {
      std::string path = cat(e->path, ".", i);
      YAML::Node item = e->value[i];
      read_section(ctx_, path, ctx_.where(path, item.Mark()), item, out[i], /*null_ok=*/false);
    }
    field = std::move(out);
  }

 private:
  struct Entry {
    YAML::Node value;
    std::string path;   // dotted key
    std::string where;  // position of the value (of the key when the value is empty)
  };

  std::optional<Entry> find(const char* key) {
    for (YAML::const_iterator it = map_.begin(); it != map_.end(); ++it) {
      if (!it->first.IsScalar() || it->first.Scalar() != key) continue;
      Entry e{it->second, join_path(path_, key), ""};
      e.where = ctx_.where(e.path, it->second.IsNull() ? it->first.Mark() : it->second.Mark());
      ctx_.where_set[e.path] = e.where;
      return e;
    }
    return std::nullopt;
  }

  int64_t to_int(const YAML::Node& node, const std::string& path, const std::string& where,
                 const Limit& limit) {
    std::optional<int64_t> v = node.IsScalar() && !is_quoted(node) ? parse_int(node.Scalar()) : std::nullopt;
    if (!v) type_error(path, where, node, "an integer");
    if (!limit.contains(static_cast<double>(*v)))
      fail(where, ": key '", path, "' = ", *v, " is out of range: must be ", limit.describe());
    return *v;
  }

  [[noreturn]] static void type_error(const std::string& path, const std::string& where, const YAML::Node& node,
                                      const std::string& expected) {
    fail(where, ": key '", path, "' must be ", expected, ", got ", show(node),
         is_quoted(node) ? " (quotes make it a string; remove them)" : "");
  }

  Context& ctx_;
  std::string path_;
  YAML::Node map_;
};

template <class S>
void read_section(Context& ctx, const std::string& path, const std::string& where, const YAML::Node& node,
                  S& s, bool null_ok) {
  if (null_ok && (!node.IsDefined() || node.IsNull())) return;  // "flow:" with nothing under it
  std::vector<std::string> valid = keys_of(s);
  if (!node.IsMap()) {
    std::string what = path.empty() ? std::string("a recipe") : cat("key '", path, "'");
    fail(where, ": ", what, " must be a map with keys ", join(valid, ", "), ", got ", show(node));
  }
  check_keys(ctx, path, node, valid);
  Reader reader(ctx, path, node);
  visit_fields(reader, s);
}

// ---- Overrides -----------------------------------------------------------------------------

struct Override {
  std::string arg;                 // as given, for messages
  std::vector<std::string> parts;  // the dotted key, split
  YAML::Node value;
};

Override parse_override(const std::string& arg) {
  const char* form = "; an override must look like key.path=value, e.g. trainer.steps=100";
  size_t eq = arg.find('=');
  if (eq == std::string::npos) fail("command line override '", arg, "' has no '='", form);
  Override o{arg, {}, {}};
  std::string key = arg.substr(0, eq);
  for (size_t start = 0;;) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool ok = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
    if (!ok) fail("command line override '", arg, "' has a malformed key '", key, "'", form);
    o.parts.push_back(part);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::string text = arg.substr(eq + 1);
  try {
    o.value = text.empty() ? YAML::Node(std::string()) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail("command line override '", arg, "': the value is not valid YAML: ", e.msg);
  }
  return o;
}

// Sets o.value at o.parts in `root` (a map), creating missing maps; a numeric part indexes a
// list (the index may be the list's size, which appends). Records which paths it set.
void apply_override(YAML::Node& root, const Override& o, Context& ctx) {
  YAML::Node cur;
  cur.reset(root);
  std::string path;
  for (size_t i = 0; i < o.parts.size(); ++i) {
    const std::string& part = o.parts[i];
    std::string parent = path;
    path = join_path(path, part);
    bool last = i + 1 == o.parts.size();
    YAML::Node child;
    if (cur.IsSequence()) {
      std::optional<int64_t> index = parse_int(part);
      if (!index || *index < 0 || static_cast<size_t>(*index) > cur.size())
        fail("command line override '", o.arg, "': '", parent, "' is a list of ", cur.size(),
             " entries; use an index from 0 to ", cur.size(), " (", cur.size(), " appends) instead of '", part, "'");
      size_t idx = static_cast<size_t>(*index);
      if (idx == cur.size()) {
        cur.push_back(last ? o.value : YAML::Node(YAML::NodeType::Map));
        ctx.override_of[path] = o.arg;
      } else if (last) {
        cur[idx] = o.value;
        ctx.override_of[path] = o.arg;
      }
      child.reset(cur[idx]);
    } else if (cur.IsMap()) {
      const YAML::Node& const_cur = cur;
      YAML::Node existing = const_cur[part];  // const lookup: does not insert
      bool next_is_index = !last && parse_int(o.parts[i + 1]).has_value();
      if (last) {
        cur[part] = o.value;
        ctx.override_of[path] = o.arg;
      } else if (!existing.IsDefined() || existing.IsNull()) {
        cur[part] = YAML::Node(next_is_index ? YAML::NodeType::Sequence : YAML::NodeType::Map);
        ctx.override_of[path] = o.arg;
      }
      child.reset(cur[part]);
    } else {
      fail("command line override '", o.arg, "': '", parent, "' holds ", show(cur), ", not a section, so it has no key '",
           part, "'");
    }
    cur.reset(child);
  }
}

// ---- Checks across keys --------------------------------------------------------------------

// ---- Writing and comparing -----------------------------------------------------------------

// Emits every key as YAML (a visitor of visit_fields).
struct Writer {
  YAML::Emitter& out;

  template <class F, class C>
  void value(const char* key, const F& field, const C&) {
    out << YAML::Key << key << YAML::Value;
    if constexpr (std::is_same_v<F, double>) {
      out << yaml_double(field);
    } else if constexpr (std::is_same_v<F, bool>) {
      out << (field ? "true" : "false");
    } else if constexpr (std::is_same_v<F, std::string>) {
      out << YAML::DoubleQuoted << field;  // never read back as a number, bool or null
    } else if constexpr (std::is_same_v<F, std::vector<int64_t>>) {
      out << YAML::Flow << YAML::BeginSeq;
      for (int64_t v : field) out << v;
      out << YAML::EndSeq;
    } else {
      out << field;
    }
  }
  template <class S>
  void section(const char* key, const S& s) {
    out << YAML::Key << key << YAML::Value << YAML::BeginMap;
    visit_fields(*this, s);
    out << YAML::EndMap;
  }
  template <class S>
  void list(const char* key, const std::vector<S>& items, size_t) {
    out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
    for (const S& item : items) {
      out << YAML::BeginMap;
      visit_fields(*this, item);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
};

// Every leaf as (dotted key, value), for equality (a visitor of visit_fields).
struct Flattener {
  using Leaf = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>>;
  std::vector<std::pair<std::string, Leaf>> leaves;
  std::string prefix;

  template <class F, class C>
  void value(const char* key, const F& field, const C&) { leaves.emplace_back(join_path(prefix, key), field); }
  template <class S>
  void section(const char* key, const S& s) { descend(join_path(prefix, key), s); }
  template <class S>
  void list(const char* key, const std::vector<S>& items, size_t) {
    leaves.emplace_back(join_path(prefix, key) + ".size", static_cast<int64_t>(items.size()));
    for (size_t i = 0; i < items.size(); ++i) descend(cat(join_path(prefix, key), ".", i), items[i]);
  }
  template <class S>
  void descend(const std::string& path, const S& s) {
    std::string saved = prefix;
    prefix = path;
    visit_fields(*this, s);
    prefix = saved;
  }
};

}  // namespace

// ---- Public API ----------------------------------------------------------------------------

Recipe parse_recipe_text(const std::string& yaml_text, const std::string& source_name,
                         const std::vector<std::string>& overrides, bool check_paths) {
  Context ctx;
  ctx.source = source_name;
  std::vector<Override> parsed;
  for (const std::string& arg : overrides) parsed.push_back(parse_override(arg));

  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? source_name : cat(source_name, ":", e.mark.line + 1, ":", e.mark.column + 1);
    fail(where, ": YAML syntax error: ", e.msg);
  }
  if (root.IsNull()) root.reset(YAML::Node(YAML::NodeType::Map));  // empty file: all defaults
  Recipe recipe;
  recipe.source = source_name;
  if (!root.IsMap())
    fail(ctx.where("", root.Mark()), ": a recipe must be a map with keys ", join(keys_of(recipe), ", "), ", got ",
         show(root));
  for (const Override& o : parsed) apply_override(root, o, ctx);

  read_section(ctx, "", source_name, root, recipe, /*null_ok=*/false);
  check_shapes(recipe, ctx, check_paths);
  return recipe;
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    fail("recipe file '", path, "' does not exist",
         fs::path(path).is_relative() ? cat(" (relative to the working directory ", fs::current_path(ec).string(), ")")
                                      : "");
  }
  if (fs::is_directory(path, ec)) fail("recipe file '", path, "' is a directory, not a YAML file");
  return parse_recipe_text(read_file(path), path, overrides);
}

std::string to_yaml(const Recipe& recipe) {
  YAML::Emitter out;
  out << YAML::Comment(cat("Resolved recipe (every key, defaults included) from ", recipe.source));
  out << YAML::BeginMap;
  Writer writer{out};
  visit_fields(writer, recipe);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

bool operator==(const Recipe& a, const Recipe& b) {
  Flattener fa, fb;
  visit_fields(fa, a);
  visit_fields(fb, b);
  return fa.leaves == fb.leaves;
}

bool operator!=(const Recipe& a, const Recipe& b) { return !(a == b); }

}  // namespace reel::trainer
