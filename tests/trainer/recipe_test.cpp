// Recipe parsing: the tiny recipes load, defaults fill in, overrides apply, to_yaml round-trips,
// and every kind of mistake is a UserError naming the file, line, key and what was expected.
#include "trainer/recipe.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "tests/test_util.h"
#include "trainer/task.h"

namespace fs = std::filesystem;
using reel::trainer::load_recipe;
using reel::trainer::parse_recipe_text;
using reel::trainer::Recipe;
using reel::trainer::to_yaml;

namespace {

const std::string kT2v = std::string(REEL_SOURCE_DIR) + "/recipes/tiny/t2v.yaml";
const std::string kT2i = std::string(REEL_SOURCE_DIR) + "/recipes/tiny/t2i.yaml";

// Runs each test in a fresh scratch directory that holds the default data.dir
// (runs/data/synth), so load_recipe's directory check passes unless a test moves data.dir.
class RecipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    scratch_ = fs::temp_directory_path() / ("reel_recipe_test_" + std::to_string(::getpid())) /
               (std::string(info->test_suite_name()) + "." + info->name());
    fs::remove_all(scratch_);
    fs::create_directories(scratch_ / "runs/data/synth");
    old_cwd_ = fs::current_path();
    fs::current_path(scratch_);
  }
  void TearDown() override {
    fs::current_path(old_cwd_);
    fs::remove_all(scratch_.parent_path());
  }

  // Writes `text` to `name` in the scratch directory and returns the (relative) path.
  static std::string write(const std::string& text, const std::string& name = "bad.yaml") {
    reel::write_file_atomic(name, text);
    return name;
  }

  // The UserError message load_recipe gives for `text` (written to bad.yaml) and `overrides`.
  static std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
    std::string path = write(text);
    return error_of([&] { load_recipe(path, overrides); });
  }
  static std::string error_of(const std::function<void()>& fn) { return reel::testing::user_error_message(fn); }

  fs::path scratch_, old_cwd_;
};

// Expects `message` to contain every one of `parts`.
void expect_contains(const std::string& message, const std::vector<std::string>& parts) {
  for (const std::string& part : parts)
    EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in:\n  " << message;
}

// Dotted paths of every leaf in a YAML tree; lists of scalars are leaves, lists of maps are
// walked with their index ("model.text_encoders.0.dim").
void leaf_keys(const YAML::Node& node, const std::string& prefix, std::set<std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) leaf_keys(kv.second, (prefix.empty() ? "" : prefix + ".") + kv.first.Scalar(), out);
  } else if (node.IsSequence() && node.size() > 0 && node[0].IsMap()) {
    for (size_t i = 0; i < node.size(); ++i) leaf_keys(node[i], prefix + "." + std::to_string(i), out);
  } else {
    out.insert(prefix);
  }
}

// One override per key, each changing its key away from the default while keeping the
// recipe valid.
const std::vector<std::string> kEveryKeyChanged = {
    "seed=7",
    "init_from=runs/data/synth",
    "data.text_cache=runs/data/synth",  // must exist too  // must exist (any path does for the recipe; the trainer reads it)
    "run.dir=runs/other",
    "run.name=exp",
    "model.name=t2v_big",
    "model.in_channels=4",
    "model.patch=[2,4,4]",
    "model.dim=96",
    "model.depth=3",
    "model.heads=8",
    "model.ffn_dim=256",
    "model.max_frames=16",
    "model.max_height=32",
    "model.max_width=64",
    "model.time_freq_dim=128",
    "model.pooled_text=true",
    "model.text_encoders.0.name=bytes2",
    "model.text_encoders.0.type=byte",  // kept: ngram applies to byte only; the one exception below
    "model.text_encoders.0.dim=64",
    "model.text_encoders.0.depth=1",
    "model.text_encoders.0.heads=2",
    "model.text_encoders.0.max_len=48",
    "model.text_encoders.0.ngram=3",
    "model.text_encoders.0.ffn_dim=256",  // byte: 0 or 4 * dim
    "model.text_encoders.0.head_dim=32",  // byte: 0 or dim / heads
    "model.text_encoders.0.vocab=259",    // byte: 0 or 259
    "model.text_encoders.0.input=quoted",
    "plan.clip=16x32x32",
    "plan.compression=[4, 8, 8]",
    "plan.gpu=h200",
    "model.text_encoders.0.weights=runs/data/synth",
    "model.text_encoders.0.trainable=false",
    "model.tae.latent_channels=8",
    "model.tae.channels=[16,32]",
    "model.tae.blocks=2",
    "model.tae.compression=[1,2,2]",
    "model.tae.attention=false",
    "model.tae.norm_groups=8",
    "data.dir=runs/data/synth",  // must exist; the exception for data.dir too
    "data.batch_size=8",
    "data.workers=0",
    "data.prefetch=2",
    "data.image_ratio=0.1",
    "data.batch_budget=4096",
    "data.buckets.fps=16",
    "data.buckets.heights=[32,24,8]",
    "data.buckets.widths=[32,40,8]",
    "data.buckets.frames=[8,16]",
    "trainer.steps=10",
    "trainer.grad_accum=2",
    "trainer.lr=0.002",
    "trainer.min_lr=0.0005",
    "trainer.warmup_steps=3",
    "trainer.schedule=constant",
    "trainer.weight_decay=0.1",
    "trainer.beta1=0.8",
    "trainer.beta2=0.95",
    "trainer.eps=1e-6",
    "trainer.grad_clip=0",
    "trainer.dtype=bf16",
    "trainer.device=cuda",
    "model.qk_norm=true",
    "model.frame_time=true",
    "model.fractional_positions=true",
    "flow.frame_times=0.5",
    "sample.stagger=1",
    "eval.stagger=0.5",
    "trainer.ema_decay=0.99",
    "trainer.threads=2",
    "trainer.batch_threads=2",
    "trainer.log_every=5",
    "trainer.val_every=7",
    "trainer.val_samples=4",
    "trainer.ckpt_every=9",
    "trainer.keep_last=0",
    "trainer.keep_every=100",
    "trainer.async_save=true",
    "trainer.max_nonfinite=5",
    "trainer.plateau_patience=3",
    "trainer.plateau_factor=0.25",
    "trainer.plateau_threshold=0.01",
    "flow.sigma_min=0.001",
    "flow.frame_correlation=0.5",
    "flow.temporal_weight=0.5",
    "flow.prediction=data",
    "flow.loss=data",
    "flow.t_mean=-0.5",
    "flow.t_std=2",
    "flow.caption_dropout=0.25",
    "parallel.dp_replicate=2",
    "parallel.dp_shard=3",
    "parallel.cp=2",
    "parallel.cp_mode=ring",
    "parallel.tp=2",
    "parallel.sequence_parallel=true",
    "parallel.reshard_after_forward=false",
    "parallel.activation_checkpointing=full",
    "parallel.timeout_s=30",
    "sample.steps=20",
    "sample.cfg=3.5",
    "sample.fps=12",
    "sample.bucket=2x8x16",
    "sample.scale=4",
    "eval.prompts=16",
    "eval.seed=99",
    "eval.steps=10",
    "eval.cfg=1.5",
    "tae_loss.l1=2",
    "tae_loss.l2=3",
    "tae_loss.gradient=0.5",
    "tae_loss.kl=1e-4",
    "tae_loss.outlier=10",
    "tae_loss.outlier_r=2",
    "tae_loss.adversarial=0.1",
    "tae_loss.adversarial_start=100",
};

// ---- The tiny recipes ------------------------------------------------------------------------

TEST_F(RecipeTest, TinyT2vParsesWithItsValues) {
  Recipe r = parse_recipe_text(reel::read_file(kT2v), kT2v, {}, /*check_paths=*/false);
  EXPECT_EQ(r.source, kT2v);
  EXPECT_EQ(r.run.dir, "runs/demo");
  EXPECT_EQ(r.data.dir, "runs/data/synth");
  EXPECT_EQ(r.trainer.steps, 1000);
  EXPECT_DOUBLE_EQ(r.flow.t_mean, -1.0);
  EXPECT_DOUBLE_EQ(r.flow.frame_correlation, 0.75);
  EXPECT_DOUBLE_EQ(r.sample.cfg, 3.0);
  EXPECT_DOUBLE_EQ(r.eval.cfg, 3.0);
  EXPECT_EQ(r.data.batch_size, 32);
  EXPECT_DOUBLE_EQ(r.trainer.lr, 2e-3);
  EXPECT_DOUBLE_EQ(r.trainer.min_lr, 1e-4);
  EXPECT_EQ(r.trainer.warmup_steps, 100);
  EXPECT_EQ(r.trainer.schedule, "cosine");
  EXPECT_DOUBLE_EQ(r.trainer.ema_decay, 0.99);
  EXPECT_EQ(r.trainer.val_every, 500);
  EXPECT_EQ(r.trainer.ckpt_every, 500);
  EXPECT_EQ(r.trainer.log_every, 25);
  EXPECT_EQ(r.sample.bucket, "8x16x16");
  EXPECT_EQ(r.sample.fps, 8);
  // The model is the tiny default one, 256 wide, on 8x8 pixel patches, with tables wide enough
  // for the 8x16x24 bucket.
  EXPECT_EQ(r.model.patch, (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(r.model.max_width, 24);
  EXPECT_EQ(r.model.dim, 256);
  Recipe with_default_model = r;
  with_default_model.model = reel::trainer::ModelSection{};
  with_default_model.model.patch = {1, 8, 8};
  with_default_model.model.max_width = 24;
  with_default_model.model.dim = 256;
  with_default_model.model.heads = 2;
  with_default_model.model.pooled_text = true;
  with_default_model.model.text_encoders[0].ngram = 5;
  EXPECT_EQ(r, with_default_model);
}

TEST_F(RecipeTest, PatchWiderThanTheModelIsWarnedAbout) {
  Recipe tiny = parse_recipe_text(reel::read_file(kT2v), kT2v, {}, /*check_paths=*/false);
  EXPECT_EQ(reel::trainer::patch_width_warning(tiny), "");  // 3 x 1 x 8 x 8 = 192 <= 256
  Recipe wide = parse_recipe_text(reel::read_file(kT2v), kT2v, {"model.patch=[2,8,8]"}, false);
  expect_contains(reel::trainer::patch_width_warning(wide),
                  {"model.patch = [2, 8, 8]", "384 values per token, more than model.dim = 256",
                   "flow.prediction: data", "model.dim of at least 384"});
  Recipe data = parse_recipe_text(reel::read_file(kT2v), kT2v, {"model.patch=[2,8,8]", "flow.prediction=data"}, false);
  EXPECT_EQ(reel::trainer::patch_width_warning(data), "");
}

TEST_F(RecipeTest, TinyT2iIsTheSameModelOnSingleFrames) {
  Recipe t2v = parse_recipe_text(reel::read_file(kT2v), kT2v, {}, false);
  Recipe t2i = parse_recipe_text(reel::read_file(kT2i), kT2i, {}, false);
  EXPECT_EQ(t2i.run.dir, "runs/t2i");
  EXPECT_EQ(t2i.data.dir, "runs/data/synth_t2i");
  EXPECT_EQ(t2i.sample.bucket, "1x16x16");
  EXPECT_LT(t2i.trainer.steps, t2v.trainer.steps);
  Recipe same_model = t2v;
  same_model.model = t2i.model;
  EXPECT_EQ(same_model, t2v);
}

TEST_F(RecipeTest, LoadRecipeResolvesDataDirAgainstTheWorkingDirectory) {
  // The scratch directory (the working directory) has runs/data/synth but not synth_t2i.
  EXPECT_EQ(load_recipe(kT2v).data.dir, "runs/data/synth");
  std::string message = error_of([] { load_recipe(kT2i); });
  // The line of data.dir in the file: "  dir: runs/data/synth_t2i".
  std::string text = reel::read_file(kT2i);
  const auto line = 1 + std::count(text.begin(), text.begin() + text.find("dir: runs/data/synth_t2i"), '\n');
  expect_contains(message, {reel::cat(kT2i, ":", line, ":"), "'data.dir'", "runs/data/synth_t2i", "no such directory",
                            "relative to the working directory",
                            "reel data synth --out runs/data/synth_t2i"});
  fs::create_directories("runs/data/synth_t2i");
  EXPECT_EQ(load_recipe(kT2i).sample.bucket, "1x16x16");
}

TEST_F(RecipeTest, TinyRecipesRoundTripThroughToYaml) {
  for (const std::string& path : {kT2v, kT2i}) {
    Recipe r = parse_recipe_text(reel::read_file(path), path, {}, false);
    Recipe back = parse_recipe_text(to_yaml(r), "<string>", {}, false);
    EXPECT_EQ(back, r) << to_yaml(r);
  }
}

// ---- Defaults and overrides ------------------------------------------------------------------

TEST_F(RecipeTest, MissingKeysAndSectionsTakeTheirDefaults) {
  EXPECT_EQ(parse_recipe_text("", "<string>"), Recipe{});
  EXPECT_EQ(parse_recipe_text("# only a comment\n", "<string>"), Recipe{});
  EXPECT_EQ(parse_recipe_text("flow:\n  # nothing set\n", "<string>"), Recipe{});

  Recipe r = parse_recipe_text("trainer:\n  steps: 5\nmodel:\n  text_encoders:\n    - {dim: 64}\n", "<string>");
  Recipe expected;
  expected.trainer.steps = 5;
  expected.model.text_encoders[0].dim = 64;
  EXPECT_EQ(r, expected);
  EXPECT_EQ(r.model.text_encoders[0].name, "byte");
  EXPECT_EQ(r.model.patch, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(r.source, "<string>");
}

TEST_F(RecipeTest, OverridesSetIntsStringsListsAndNestedKeys) {
  std::string path = write("trainer:\n  steps: 5\nmodel:\n  patch: [1, 2, 2]\n", "ok.yaml");
  Recipe r = load_recipe(path, {"trainer.steps=100", "run.dir=/tmp/x", "seed=3", "model.patch=[1,4,4]",
                                "model.text_encoders.0.dim=64", "flow.t_std=0.5", "trainer.steps=200"});
  EXPECT_EQ(r.trainer.steps, 200);  // the later override wins
  EXPECT_EQ(r.run.dir, "/tmp/x");
  EXPECT_EQ(r.seed, 3);
  EXPECT_EQ(r.model.patch, (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(r.model.text_encoders.size(), 1u);
  EXPECT_EQ(r.model.text_encoders[0].dim, 64);
  EXPECT_EQ(r.model.text_encoders[0].name, "byte");
  EXPECT_DOUBLE_EQ(r.flow.t_std, 0.5);

  YAML::Node resolved = YAML::Load(to_yaml(r));
  EXPECT_EQ(resolved["trainer"]["steps"].as<int64_t>(), 200);
  EXPECT_EQ(resolved["run"]["dir"].as<std::string>(), "/tmp/x");
  EXPECT_EQ(resolved["seed"].as<int64_t>(), 3);
  EXPECT_EQ(resolved["model"]["patch"].as<std::vector<int64_t>>(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(resolved["model"]["text_encoders"][0]["dim"].as<int64_t>(), 64);
  EXPECT_EQ(resolved["flow"]["t_std"].as<double>(), 0.5);
}

TEST_F(RecipeTest, OverridesCanReplaceAndAppendTextEncoders) {
  Recipe r = parse_recipe_text("", "<string>",
                               {"model.text_encoders=[{name: a, dim: 64}]", "model.text_encoders.1.name=b",
                                "run.name="});
  ASSERT_EQ(r.model.text_encoders.size(), 2u);
  EXPECT_EQ(r.model.text_encoders[0].name, "a");
  EXPECT_EQ(r.model.text_encoders[0].dim, 64);
  EXPECT_EQ(r.model.text_encoders[1].name, "b");
  EXPECT_EQ(r.model.text_encoders[1].dim, 128);
  EXPECT_EQ(r.run.name, "");
}

TEST_F(RecipeTest, EveryKeyIsReadPrintedAndCompared) {
  // The override list covers exactly the keys to_yaml prints.
  std::set<std::string> printed, overridden;
  leaf_keys(YAML::Load(to_yaml(Recipe{})), "", printed);
  for (const std::string& o : kEveryKeyChanged) overridden.insert(o.substr(0, o.find('=')));
  EXPECT_EQ(printed, overridden);

  Recipe all = parse_recipe_text("", "<string>", kEveryKeyChanged);
  EXPECT_NE(all, Recipe{});
  EXPECT_EQ(parse_recipe_text(to_yaml(all), "<string>"), all) << to_yaml(all);

  // Each override changes its key, and operator== sees that key (two keys have one legal value).
  for (size_t skip = 0; skip < kEveryKeyChanged.size(); ++skip) {
    const std::string& o = kEveryKeyChanged[skip];
    if (o.rfind("model.text_encoders.0.type=", 0) == 0 || o.rfind("data.dir=", 0) == 0) continue;
    std::vector<std::string> others = kEveryKeyChanged;
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(skip));
    // flow.loss = data needs flow.prediction = data: drop the loss together with the prediction.
    if (o.rfind("flow.prediction=", 0) == 0) others.erase(std::find(others.begin(), others.end(), "flow.loss=data"));
    // Per-frame noise levels need a model.frame_time model: drop them together.
    if (o.rfind("model.frame_time=", 0) == 0) {
      for (const char* dependent : {"flow.frame_times=0.5", "sample.stagger=1", "eval.stagger=0.5"})
        others.erase(std::find(others.begin(), others.end(), dependent));
    }
    // A byte encoder's ffn_dim and head_dim follow its dim and heads: drop them together.
    if (o.rfind("model.text_encoders.0.dim=", 0) == 0 || o.rfind("model.text_encoders.0.heads=", 0) == 0) {
      for (const char* dependent : {"model.text_encoders.0.ffn_dim=256", "model.text_encoders.0.head_dim=32"}) {
        auto it = std::find(others.begin(), others.end(), dependent);
        if (it != others.end()) others.erase(it);
      }
    }
    EXPECT_NE(parse_recipe_text("", "<string>", others), all) << "without " << o;
  }
}

TEST_F(RecipeTest, ToYamlPrintsEveryKeyWithDefaults) {
  std::string yaml = to_yaml(Recipe{});
  expect_contains(yaml, {"seed: 0", "dir: \"runs/default\"", "patch: [1, 2, 2]", "text_encoders:", "max_len: 96",
                         "trainable: true", "lr: 0.001", "eps: 1e-08", "grad_clip: 1.0", "t_mean: 0.0", "schedule: \"cosine\"", "bucket: \"8x16x16\""});
}

// ---- Errors ----------------------------------------------------------------------------------

TEST_F(RecipeTest, UnknownKeyNamesLineKeySuggestionAndValidKeys) {
  std::string message = error_of("trainer:\n  steps: 10\n  stepz: 5\n");
  expect_contains(message, {"bad.yaml:3:3: unknown key 'trainer.stepz'; did you mean 'trainer.steps'?",
                            "valid keys under 'trainer': steps, grad_accum, lr,", "keep_last"});
}

TEST_F(RecipeTest, UnknownSectionNamesLineAndTopLevelKeys) {
  std::string message = error_of("seed: 1\ntraner:\n  steps: 1\n");
  expect_contains(message, {"bad.yaml:2:1: unknown key 'traner'; did you mean 'trainer'?",
                            "valid top-level keys: seed, init_from, run, model, data, trainer, flow, parallel, sample, eval, tae_loss"});
  message = error_of("optimizer:\n  lr: 1\n");
  expect_contains(message, {"bad.yaml:1:1: unknown key 'optimizer'; valid top-level keys: seed, init_from, run"});
}

TEST_F(RecipeTest, KeyInTheWrongSectionPointsAtItsSection) {
  expect_contains(error_of("trainer:\n  batch_size: 4\n"),
                  {"bad.yaml:2:3: unknown key 'trainer.batch_size'; did you mean 'data.batch_size'?"});
}

TEST_F(RecipeTest, UnknownKeyInsideATextEncoder) {
  expect_contains(error_of("model:\n  text_encoders:\n    - name: byte\n      widht: 3\n"),
                  {"bad.yaml:4:7: unknown key 'model.text_encoders.0.widht'",
                   "valid keys under 'model.text_encoders.0': name, type, dim"});
}

TEST_F(RecipeTest, DuplicateKeyNamesBothLines) {
  expect_contains(error_of("trainer:\n  steps: 1\n  lr: 0.1\n  steps: 2\n"),
                  {"bad.yaml:4:3: key 'trainer.steps' is set twice (first at bad.yaml:2:3)"});
}

TEST_F(RecipeTest, WrongTypeInteger) {
  expect_contains(error_of("model:\n  dim: abc\n"), {"bad.yaml:2:8: key 'model.dim' must be an integer, got 'abc'"});
  expect_contains(error_of("seed: 1\ntrainer:\n  steps: 1.5\n"),
                  {"bad.yaml:3:10: key 'trainer.steps' must be an integer, got '1.5'"});
  expect_contains(error_of("data:\n  batch_size: \"16\"\n"),
                  {"bad.yaml:2:15: key 'data.batch_size' must be an integer, got the quoted string '16'",
                   "remove them"});
  expect_contains(error_of("data:\n  workers:\n"),
                  {"bad.yaml:2:3: key 'data.workers' must be an integer, got nothing (null)"});
  expect_contains(error_of("seed: 99999999999999999999\n"), {"bad.yaml:1:7: key 'seed' must be an integer"});
}

TEST_F(RecipeTest, WrongTypeFloat) {
  expect_contains(error_of("trainer:\n  lr: fast\n"), {"bad.yaml:2:7: key 'trainer.lr' must be a number, got 'fast'"});
  expect_contains(error_of("flow:\n  t_mean: .nan\n"), {"bad.yaml:2:11: key 'flow.t_mean' must be a number"});
  // Integers and exponents are numbers.
  Recipe r = parse_recipe_text("trainer:\n  lr: 2\n  eps: 1e-6\n  min_lr: 0\n", "<string>");
  EXPECT_EQ(r.trainer.lr, 2.0);
  EXPECT_EQ(r.trainer.eps, 1e-6);
}

TEST_F(RecipeTest, WrongTypeBool) {
  expect_contains(error_of("model:\n  text_encoders:\n    - name: byte\n      trainable: maybe\n"),
                  {"bad.yaml:4:18: key 'model.text_encoders.0.trainable' must be true or false, got 'maybe'"});
}

TEST_F(RecipeTest, WrongTypeString) {
  expect_contains(error_of("run:\n  dir: [a, b]\n"), {"bad.yaml:2:8: key 'run.dir' must be a string, got the list [a, b]"});
}

TEST_F(RecipeTest, WrongListLengthOrElement) {
  expect_contains(error_of("model:\n  patch: [1, 2]\n"),
                  {"bad.yaml:2:10: key 'model.patch' must be a list of 3 integers", "with 2 entries"});
  expect_contains(error_of("model:\n  patch: 2\n"),
                  {"bad.yaml:2:10: key 'model.patch' must be a list of 3 integers", "got '2'"});
  expect_contains(error_of("model:\n  patch: [1, x, 2]\n"),
                  {"bad.yaml:2:14: key 'model.patch.1' must be an integer, got 'x'"});
  expect_contains(error_of("model:\n  patch: [1, 0, 2]\n"),
                  {"bad.yaml:2:14: key 'model.patch.1' = 0 is out of range: must be >= 1"});
  expect_contains(error_of("model:\n  text_encoders: []\n"),
                  {"bad.yaml:2:18: key 'model.text_encoders' must have at least 1 entry"});
  expect_contains(error_of("model:\n  text_encoders: byte\n"),
                  {"bad.yaml:2:18: key 'model.text_encoders' must be a list of maps with keys name, type"});
}

TEST_F(RecipeTest, SectionThatIsNotAMap) {
  expect_contains(error_of("trainer: 5\n"),
                  {"bad.yaml:1:10: key 'trainer' must be a map with keys steps, grad_accum", "got '5'"});
  expect_contains(error_of("- a\n- b\n"), {"bad.yaml:1:1: a recipe must be a map with keys seed, init_from, run"});
}

TEST_F(RecipeTest, OutOfRange) {
  expect_contains(error_of("trainer:\n  steps: 0\n"),
                  {"bad.yaml:2:10: key 'trainer.steps' = 0 is out of range: must be >= 1"});
  expect_contains(error_of("trainer:\n  ema_decay: 1.0\n"),
                  {"bad.yaml:2:14: key 'trainer.ema_decay' = 1.0 is out of range: must be in [0, 1)"});
  expect_contains(error_of("trainer:\n  lr: 0\n"), {"bad.yaml:2:7: key 'trainer.lr' = 0 is out of range: must be > 0"});
  expect_contains(error_of("flow:\n  caption_dropout: -0.1\n"),
                  {"bad.yaml:2:20: key 'flow.caption_dropout' = -0.1 is out of range: must be in [0, 1)"});
  expect_contains(error_of("flow:\n  frame_correlation: 1\n"),
                  {"bad.yaml:2:22: key 'flow.frame_correlation' = 1 is out of range: must be in [0, 1)"});
  expect_contains(error_of("flow:\n  loss: data\n"),
                  {"bad.yaml:2:9: key 'flow.loss' = 'data' needs flow.prediction = 'data' (got 'velocity')"});
  expect_contains(error_of("flow:\n  prediction: epsilon\n"), {"bad.yaml:2:15: key 'flow.prediction'", "epsilon"});
  expect_contains(error_of("data:\n  batch_size: 0\n"), {"bad.yaml:2:15: key 'data.batch_size' = 0"});
  expect_contains(error_of("run:\n  dir: ''\n"), {"bad.yaml:2:8: key 'run.dir' must not be empty"});
}

TEST_F(RecipeTest, HeadsMustDivideDim) {
  expect_contains(error_of("model:\n  dim: 128\n  heads: 5\n"),
                  {"bad.yaml:3:10: key 'model.heads' = 5 does not divide model.dim = 128; choose heads so that "
                   "dim % heads == 0"});
  expect_contains(error_of("model:\n  text_encoders:\n    - dim: 102\n"),
                  {"bad.yaml:3:12: key 'model.text_encoders.0.heads' = 4 does not divide model.text_encoders.0.dim = "
                   "102"});
}

TEST_F(RecipeTest, BadChoice) {
  expect_contains(error_of("trainer:\n  schedule: linear\n"),
                  {"bad.yaml:2:13: key 'trainer.schedule' = 'linear' is not one of: cosine, constant"});
  expect_contains(error_of("trainer:\n  dtype: bf61\n"),
                  {"bad.yaml:2:10: key 'trainer.dtype' = 'bf61' is not one of: fp32, bf16; did you mean 'bf16'?"});
}

TEST_F(RecipeTest, ImpossibleShapes) {
  expect_contains(error_of("trainer:\n  lr: 0.001\n  min_lr: 0.01\n"),
                  {"bad.yaml:3:11: key 'trainer.min_lr' = 0.01 is larger than trainer.lr = 0.001"});
  expect_contains(error_of("sample:\n  bucket: 8x16\n"),
                  {"bad.yaml:2:11: key 'sample.bucket' = '8x16' must be FRAMESxHEIGHTxWIDTH"});
  expect_contains(error_of("sample:\n  bucket: 16x16x16\n"),
                  {"bad.yaml:2:11: key 'sample.bucket' = '16x16x16' has frames 16, more than model.max_frames = 8"});
  // A latent model's sample.bucket is a pixel shape, mapped through its TAE when sampling.
  EXPECT_NO_THROW(parse_recipe_text("model:\n  in_channels: 16\nsample:\n  bucket: 16x64x64\n", "latent.yaml", {}, false));
  expect_contains(error_of("sample:\n  bucket: 8x15x16\n"),
                  {"bad.yaml:2:11: key 'sample.bucket' = '8x15x16' has height 15, not a multiple of the height patch "
                   "size 2"});
  expect_contains(error_of("model:\n  max_width: 15\n"),
                  {"bad.yaml:2:14: key 'model.max_width' = 15 is not a multiple of the width patch size 2"});
  expect_contains(error_of("model:\n  time_freq_dim: 255\n"),
                  {"bad.yaml:2:18: key 'model.time_freq_dim' = 255 must be even"});
  expect_contains(error_of("model:\n  text_encoders:\n    - name: a\n    - name: a\n"),
                  {"bad.yaml:4:13: key 'model.text_encoders.1.name' = 'a' repeats model.text_encoders.0.name"});
  expect_contains(error_of("model:\n  text_encoders:\n    - name: a\n      ngram: 4\n"),
                  {"bad.yaml:4:14: key 'model.text_encoders.0.ngram' = 4 must be 0 (no n-gram convolution) or odd"});
  // Options of one encoder type given to another, named with the slot and where it is set.
  expect_contains(error_of("model:\n  text_encoders:\n    - name: a\n      type: ul2\n      ngram: 3\n"),
                  {"bad.yaml:4:13: model.text_encoders.0: text encoder (ul2) option ngram = 3 applies to type byte only"});
  expect_contains(error_of("model:\n  text_encoders:\n    - name: a\n      ffn_dim: 100\n"),
                  {"model.text_encoders.0: text encoder (byte) option ffn_dim = 100 does not apply to this type"});
  expect_contains(error_of("model:\n  text_encoders:\n    - type: t5\n"),
                  {"bad.yaml:3:13: key 'model.text_encoders.0.type' = 't5'", "byte", "byt5", "ul2", "metaclip"});
  // T5 types may set head_dim instead of dividing dim by heads (ByT5-small: 1472 wide, 6 heads of 64).
  EXPECT_NO_THROW(parse_recipe_text("model:\n  text_encoders:\n    - {name: q, type: byt5, dim: 1472, heads: 6, "
                                    "head_dim: 64, input: quoted}\n", "ok.yaml", {}, false));
}

TEST_F(RecipeTest, MissingFileNamesThePath) {
  expect_contains(error_of([] { load_recipe("/nonexistent/reel/recipe.yaml"); }),
                  {"recipe file '/nonexistent/reel/recipe.yaml' does not exist"});
  expect_contains(error_of([] { load_recipe("runs"); }), {"recipe file 'runs' is a directory"});
}

TEST_F(RecipeTest, YamlSyntaxErrorNamesFileLineAndColumn) {
  expect_contains(error_of("trainer:\n  steps: 1\n  lr: [0.1, 0.2\nflow:\n  t_std: 1\n"),
                  {"bad.yaml:4:5: YAML syntax error: end of sequence flow not found"});
  expect_contains(error_of("trainer:\n  steps: 1\n   lr: 2\n"), {"bad.yaml:3:6: YAML syntax error: illegal map value"});
}

TEST_F(RecipeTest, MissingDataDirNamesKeyAndPath) {
  expect_contains(error_of("seed: 1\ndata:\n  dir: runs/data/nope\n"),
                  {"bad.yaml:3:8: key 'data.dir' = 'runs/data/nope': no such directory", "relative to the working"});
  write("", "a_file");
  expect_contains(error_of("data:\n  dir: a_file\n"), {"bad.yaml:2:8: key 'data.dir' = 'a_file': is not a directory"});
  // The check is skipped on request.
  EXPECT_EQ(parse_recipe_text("data:\n  dir: runs/data/nope\n", "<string>", {}, false).data.dir, "runs/data/nope");
}

TEST_F(RecipeTest, BadOverrideSyntaxNamesTheArgument) {
  expect_contains(error_of("", {"trainer.steps"}),
                  {"command line override 'trainer.steps' has no '='", "key.path=value"});
  expect_contains(error_of("", {"=5"}), {"command line override '=5' has a malformed key ''"});
  expect_contains(error_of("", {"trainer..steps=5"}), {"command line override 'trainer..steps=5' has a malformed key"});
  expect_contains(error_of("", {"model.patch=[1,2"}),
                  {"command line override 'model.patch=[1,2': the value is not valid YAML"});
  expect_contains(error_of("seed: 0\n", {"seed.x=1"}),
                  {"command line override 'seed.x=1': 'seed' holds '0', not a section, so it has no key 'x'"});
  expect_contains(error_of("", {"seed.x=1"}),
                  {"command line override 'seed.x=1': key 'seed' must be an integer, got the map {x: 1}"});
  expect_contains(error_of("", {"model.text_encoders.0.dim=64", "model.text_encoders.5.dim=1"}),
                  {"command line override 'model.text_encoders.5.dim=1': 'model.text_encoders' is a list of 1 entries"});
}

TEST_F(RecipeTest, BadOverrideValuesAreReportedAgainstTheOverride) {
  std::string path = write("trainer:\n  steps: 5\n", "ok.yaml");
  expect_contains(error_of([&] { load_recipe(path, {"trainer.stepz=5"}); }),
                  {"command line override 'trainer.stepz=5': unknown key 'trainer.stepz'; did you mean 'trainer.steps'?",
                   "valid keys under 'trainer': steps"});
  expect_contains(error_of([&] { load_recipe(path, {"trainr.steps=5"}); }),
                  {"command line override 'trainr.steps=5': unknown key 'trainr'; did you mean 'trainer'?"});
  expect_contains(error_of([&] { load_recipe(path, {"trainer.steps=abc"}); }),
                  {"command line override 'trainer.steps=abc': key 'trainer.steps' must be an integer, got 'abc'"});
  expect_contains(error_of([&] { load_recipe(path, {"model.heads=5"}); }),
                  {"command line override 'model.heads=5': key 'model.heads' = 5 does not divide model.dim = 128"});
  expect_contains(error_of([&] { load_recipe(path, {"model.text_encoders=[{dim: 3}]"}); }),
                  {"command line override 'model.text_encoders=[{dim: 3}]': key 'model.text_encoders.0.heads' = 4"});
  expect_contains(error_of([&] { load_recipe(path, {"data.dir=/nonexistent/reel/data"}); }),
                  {"command line override 'data.dir=/nonexistent/reel/data': key 'data.dir'", "no such directory"});
  expect_contains(error_of([&] { load_recipe(path, {"init_from=/nonexistent/run"}); }),
                  {"command line override 'init_from=/nonexistent/run': key 'init_from'", "no such checkpoint"});
}

}  // namespace

namespace reel::trainer {
namespace {

TEST(RecipeParallel, MeshKeysAreCheckedAgainstTheModel) {  // paths unchecked: runs from any directory
  using reel::testing::expect_user_error;
  static auto parse = [](const std::string& text) { return parse_recipe_text(text, "p.yaml", {}, false); };
  Recipe r = parse("model:\n  heads: 4\nparallel:\n  tp: 2\n  dp_shard: -1\n");
  EXPECT_EQ(r.parallel.tp, 2);
  EXPECT_EQ(r.parallel.dp_shard, -1);
  expect_user_error([] { parse("model:\n  heads: 4\nparallel:\n  tp: 3\n"); },
                    "p.yaml:4:7: key 'parallel.tp' = 3 does not divide model.heads = 4");
  expect_user_error([] { parse("model:\n  heads: 4\n  ffn_dim: 33\nparallel:\n  tp: 2\n"); },
                    "key 'parallel.tp' = 2 does not divide the FFN width 33 (model.ffn_dim)");
  expect_user_error([] { parse("parallel:\n  dp_shard: 0\n"); },
                    "p.yaml:2:13: key 'parallel.dp_shard' = 0 must be >= 1, or -1");
  expect_user_error([] { parse("parallel:\n  dp_shard: -2\n"); }, "parallel.dp_shard");
  expect_user_error(
      [] { parse("model:\n  heads: 4\nparallel:\n  cp: 8\n  cp_mode: ulysses\n"); },
      "with cp_mode 'ulysses' needs model.heads / tp = 4 / 1 divisible by cp");
  parse("model:\n  heads: 4\nparallel:\n  cp: 8\n  cp_mode: ring\n");  // any cp for ring
  expect_user_error([] { parse("parallel:\n  cp_mode: rings\n"); }, "allgather_kv");
  expect_user_error([] { parse("parallel:\n  timeout_s: 0\n"); }, "parallel.timeout_s");
}

}  // namespace
}  // namespace reel::trainer
