// The synthetic dataset against its known truth: geometry and colour measured from the pixels,
// caption wording, evaluation prompts, and the files write_synth_dataset leaves.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/fs.h"
#include "data/shards.h"
#include "data/synth.h"

using namespace reel::data;
namespace fs = std::filesystem;

namespace {

// Per-pixel coverage of the object in frame f of an untextured clip, measured from its colour:
// the projection of (pixel - background) onto (object colour - background), in [0, 1].
std::vector<double> coverage(const Clip& clip, int f) {
  const int H = int(clip.pixels.size(1)), W = int(clip.pixels.size(2));
  const auto rgb = color_rgb(clip.truth.color);
  const double bg = background_level(clip.truth.background);
  double norm = 0;
  for (int c = 0; c < 3; ++c) norm += (rgb[c] - bg) * (rgb[c] - bg);
  auto px = clip.pixels.accessor<uint8_t, 4>();
  std::vector<double> cover(size_t(H) * W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      double dot = 0;
      for (int c = 0; c < 3; ++c) dot += (px[f][y][x][c] - bg) * (rgb[c] - bg);
      cover[size_t(y) * W + x] = std::clamp(dot / norm, 0.0, 1.0);
    }
  return cover;
}

struct Moments {
  double area, x, y;
};

Moments moments(const Clip& clip, int f) {
  const int W = int(clip.pixels.size(2));
  std::vector<double> cover = coverage(clip, f);
  Moments m{0, 0, 0};
  for (size_t i = 0; i < cover.size(); ++i) {
    m.area += cover[i];
    m.x += cover[i] * (int(i % W) + 0.5);
    m.y += cover[i] * (int(i / W) + 0.5);
  }
  m.x /= m.area;
  m.y /= m.area;
  return m;
}

double shape_area(int shape, double r) { return shape == 0 ? M_PI * r * r : shape == 1 ? 4 * r * r : 2 * r * r; }

// Lower-case words of a caption, punctuation stripped.
std::vector<std::string> words(const std::string& caption) {
  std::vector<std::string> out;
  std::string w;
  for (char ch : caption + " ") {
    if (std::isalpha(static_cast<unsigned char>(ch))) {
      w += char(std::tolower(static_cast<unsigned char>(ch)));
    } else if (!w.empty()) {
      out.push_back(w);
      w.clear();
    }
  }
  return out;
}

// Whether `caption` names direction `motion`: its name as a word, or name + "ward".
bool names_direction(const std::string& caption, int motion) {
  const std::string& name = motion_names()[motion];
  for (const std::string& w : words(caption))
    if (w == name || w == name + "ward") return true;
  return false;
}

bool has_word(const std::string& caption, const std::string& word) {
  for (const std::string& w : words(caption))
    if (w == word) return true;
  return false;
}

const std::vector<Bucket> kBuckets = {{8, 16, 16}, {8, 16, 24}, {16, 12, 8}, {4, 8, 8}};

}  // namespace

TEST(Bucket, NameAndParseRoundTrip) {
  Bucket b{8, 16, 24};
  EXPECT_EQ(b.name(), "8x16x24");
  EXPECT_EQ(Bucket::parse("8x16x24"), b);
  EXPECT_EQ(b.pixels(), 8 * 16 * 24);
  EXPECT_TRUE(Bucket::parse("1x16x16") < b);
  EXPECT_FALSE(b < b);
  for (const char* bad : {"", "8x16", "8x16x", "ax16x16", "8x16x16x2", "0x16x16", "8x-1x16", "8 x16x16"}) {
    try {
      Bucket::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const reel::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + std::string(bad) + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(Palette, ColoursAreSaturatedAndFarApartBackgroundsNeutral) {
  ASSERT_EQ(color_names(), (std::vector<std::string>{"red", "green", "blue", "yellow", "purple", "cyan", "orange"}));
  ASSERT_EQ(shape_names(), (std::vector<std::string>{"circle", "square", "triangle"}));
  ASSERT_EQ(motion_names(), (std::vector<std::string>{"left", "right", "up", "down", "still"}));
  for (int a = 0; a < 7; ++a) {
    auto ca = color_rgb(a);
    EXPECT_GE(*std::max_element(ca.begin(), ca.end()) - *std::min_element(ca.begin(), ca.end()), 200) << a;
    for (int b = 0; b < a; ++b) {
      auto cb = color_rgb(b);
      double d = std::sqrt(std::pow(ca[0] - cb[0], 2) + std::pow(ca[1] - cb[1], 2) + std::pow(ca[2] - cb[2], 2));
      EXPECT_GE(d, 120) << color_names()[a] << " vs " << color_names()[b];
    }
    for (int g = 0; g < int(background_names().size()); ++g) {
      double level = background_level(g), d = 0;
      for (int c = 0; c < 3; ++c) d += (ca[c] - level) * (ca[c] - level);
      EXPECT_GE(std::sqrt(d), 150) << color_names()[a] << " on " << background_names()[g];
    }
  }
  EXPECT_THROW(color_rgb(7), reel::UserError);
}

TEST(RenderClip, IsDeterministicInItsArguments) {
  Clip a = render_clip({8, 16, 16}, 2, 1, kUp, 42, 8, 0.5);
  Clip b = render_clip({8, 16, 16}, 2, 1, kUp, 42, 8, 0.5);
  EXPECT_TRUE(torch::equal(a.pixels, b.pixels));
  EXPECT_EQ(a.caption, b.caption);
  EXPECT_EQ(a.truth.centers, b.truth.centers);
  EXPECT_EQ(a.truth.size, b.truth.size);
  Clip c = render_clip({8, 16, 16}, 2, 1, kUp, 43, 8, 0.5);
  EXPECT_FALSE(torch::equal(a.pixels, c.pixels));
  EXPECT_EQ(a.pixels.sizes(), torch::IntArrayRef({8, 16, 16, 3}));
  EXPECT_EQ(a.pixels.scalar_type(), torch::kUInt8);
  EXPECT_EQ(render_clip({8, 16, 16}, 2, 1, kUp, 42, 24).fps, 24);
}

TEST(RenderClip, RefusesBadArguments) {
  EXPECT_THROW(render_clip({8, 4, 16}, 0, 0, kLeft, 1), reel::UserError);
  EXPECT_THROW(render_clip({8, 16, 16}, 9, 0, kLeft, 1), reel::UserError);
  EXPECT_THROW(render_clip({8, 16, 16}, 0, 3, kLeft, 1), reel::UserError);
  EXPECT_THROW(render_clip({8, 16, 16}, 0, 0, 5, 1), reel::UserError);
  EXPECT_THROW(render_clip({8, 16, 16}, 0, 0, kLeft, 1, 8, 1.5), reel::UserError);
}

// The whole object is visible in every frame: its truth extent lies inside the frame and the
// area measured from the pixels is the shape's full area in every frame.
TEST(RenderClip, ObjectStaysInsideTheFrame) {
  for (const Bucket& b : kBuckets)
    for (int shape = 0; shape < 3; ++shape)
      for (int motion = 0; motion < 5; ++motion)
        for (uint64_t seed = 0; seed < 6; ++seed) {
          Clip clip = render_clip(b, int(seed % 7), shape, motion, seed * 977 + motion, 8, 0.0);
          const double r = clip.truth.size;
          ASSERT_EQ(int(clip.truth.centers.size()), b.frames);
          const double top = shape == 2 ? 4 * r / 3 : r, bottom = shape == 2 ? 2 * r / 3 : r;
          for (int f = 0; f < b.frames; ++f) {
            auto [x, y] = clip.truth.centers[f];
            EXPECT_GE(x - r, 0);
            EXPECT_LE(x + r, b.width);
            EXPECT_GE(y - top, 0);
            EXPECT_LE(y + bottom, b.height);
            Moments m = moments(clip, f);
            EXPECT_NEAR(m.area, shape_area(shape, r), 0.12 * shape_area(shape, r) + 0.5)
                << b.name() << " shape " << shape << " motion " << motion << " seed " << seed << " frame " << f;
          }
        }
}

// The centroid measured from the pixels follows the truth, and the truth path goes the way the
// motion says: far enough in a straight line, or not at all.
TEST(RenderClip, CentroidPathMatchesMotion) {
  for (const Bucket& b : kBuckets)
    for (int shape = 0; shape < 3; ++shape)
      for (int motion = 0; motion < 5; ++motion)
        for (uint64_t seed = 0; seed < 4; ++seed) {
          Clip clip = render_clip(b, int((seed + shape) % 7), shape, motion, 1000 + seed, 8, 0.0);
          ASSERT_EQ(clip.truth.motion, motion);
          const auto& c = clip.truth.centers;
          for (int f = 0; f < b.frames; ++f) {
            Moments m = moments(clip, f);
            EXPECT_NEAR(m.x, c[f][0], 0.3) << b.name() << " shape " << shape << " frame " << f;
            EXPECT_NEAR(m.y, c[f][1], 0.3) << b.name() << " shape " << shape << " frame " << f;
          }
          const Moments first = moments(clip, 0), last = moments(clip, b.frames - 1);
          const double dx = last.x - first.x, dy = last.y - first.y;
          const double want_x = motion == kLeft ? -1 : motion == kRight ? 1 : 0;
          const double want_y = motion == kUp ? -1 : motion == kDown ? 1 : 0;
          if (motion == kStill) {
            for (int f = 1; f < b.frames; ++f) EXPECT_EQ(c[f], c[0]);
            EXPECT_NEAR(dx, 0, 0.05);
            EXPECT_NEAR(dy, 0, 0.05);
          } else {
            const double along = dx * want_x + dy * want_y, across = std::abs(dx * want_y) + std::abs(dy * want_x);
            const double side = want_x != 0 ? b.width : b.height;
            EXPECT_GE(along, 0.4 * side) << b.name() << " motion " << motion_names()[motion];
            EXPECT_LT(across, 0.1);
            // Constant speed in a straight line: every step is the same.
            for (int f = 1; f < b.frames; ++f) {
              EXPECT_NEAR(c[f][0] - c[f - 1][0], (c[1][0] - c[0][0]), 1e-3);
              EXPECT_NEAR(c[f][1] - c[f - 1][1], (c[1][1] - c[0][1]), 1e-3);
            }
          }
        }
}

TEST(RenderClip, ObjectHasTheRequestedColourOnANeutralBackground) {
  for (int color = 0; color < 7; ++color)
    for (uint64_t seed = 0; seed < 8; ++seed) {
      Clip clip = render_clip({4, 16, 16}, color, int(seed % 3), kRight, seed, 8, 1.0);  // always textured
      ASSERT_TRUE(clip.truth.textured);
      const auto rgb = color_rgb(color);
      auto px = clip.pixels.accessor<uint8_t, 4>();
      for (int f = 0; f < 4; ++f) {
        auto [cx, cy] = clip.truth.centers[f];
        int exact = 0;
        for (int y = 0; y < 16; ++y)
          for (int x = 0; x < 16; ++x) {
            const bool is_object = px[f][y][x][0] == rgb[0] && px[f][y][x][1] == rgb[1] && px[f][y][x][2] == rgb[2];
            exact += is_object;
            const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
            if (d > 1.5 * clip.truth.size + 1.5) {  // background: grey, near its level
              EXPECT_EQ(px[f][y][x][0], px[f][y][x][1]);
              EXPECT_EQ(px[f][y][x][1], px[f][y][x][2]);
              EXPECT_NEAR(px[f][y][x][0], background_level(clip.truth.background), 10.5);
            }
          }
        EXPECT_GE(exact, 3) << color_names()[color] << " seed " << seed << " frame " << f;
        // The pixel under the centroid is the object colour.
        EXPECT_EQ(px[f][int(cy)][int(cx)][0], rgb[0]);
        EXPECT_EQ(px[f][int(cy)][int(cx)][1], rgb[1]);
        EXPECT_EQ(px[f][int(cy)][int(cx)][2], rgb[2]);
      }
    }
}

TEST(RenderClip, OneFrameBucketsAreStillImages) {
  Clip clip = render_clip({1, 16, 16}, 3, 2, kLeft, 5);
  EXPECT_EQ(clip.pixels.size(0), 1);
  EXPECT_EQ(clip.truth.motion, kStill);
  ASSERT_EQ(clip.truth.centers.size(), 1u);
  for (int m = 0; m < 5; ++m) EXPECT_FALSE(names_direction(clip.caption, m)) << clip.caption;
}

TEST(Captions, NameColourShapeAndDirection) {
  std::mt19937_64 rng(7);
  for (int color = 0; color < 7; ++color)
    for (int shape = 0; shape < 3; ++shape)
      for (int motion = 0; motion < 5; ++motion)
        for (int draw = 0; draw < 40; ++draw) {
          Truth t{color, shape, motion, draw % 4, draw % 3 == 0, 3.0f + draw % 3, {}};
          const std::string video = make_caption(t, false, rng, 16);
          EXPECT_TRUE(has_word(video, color_names()[color])) << video;
          EXPECT_TRUE(has_word(video, shape_names()[shape])) << video;
          for (int m = 0; m < 5; ++m) EXPECT_EQ(names_direction(video, m), m == motion) << video;
          const std::string image = make_caption(t, true, rng, 16);
          EXPECT_TRUE(has_word(image, color_names()[color])) << image;
          EXPECT_TRUE(has_word(image, shape_names()[shape])) << image;
          for (int m = 0; m < 5; ++m) EXPECT_FALSE(names_direction(image, m)) << image;
        }
}

TEST(Captions, WordingVariesForTheSameTruth) {
  std::mt19937_64 rng(11);
  Truth t{0, 0, kLeft, 2, false, 3.0f, {}};
  std::set<std::string> video, image;
  for (int i = 0; i < 300; ++i) {
    video.insert(make_caption(t, false, rng, 16));
    image.insert(make_caption(t, true, rng, 16));
  }
  EXPECT_GE(video.size(), 20u);
  EXPECT_GE(image.size(), 5u);
  std::mt19937_64 a(3), b(3);
  EXPECT_EQ(make_caption(t, false, a, 16), make_caption(t, false, b, 16));
}

// "small" and "large" only where the object is small or large for its frame.
TEST(Captions, SizeWordsMatchTheSize) {
  int small = 0, large = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Clip clip = render_clip({2, 16, 24}, 0, 0, kDown, seed);
    const double relative = clip.truth.size / 16;
    for (const char* w : {"small", "tiny", "little"})
      if (has_word(clip.caption, w)) {
        EXPECT_LT(relative, 0.15) << clip.caption;
        ++small;
      }
    for (const char* w : {"large", "big"})
      if (has_word(clip.caption, w)) {
        EXPECT_GT(relative, 0.19) << clip.caption;
        ++large;
      }
  }
  EXPECT_GT(small, 20);
  EXPECT_GT(large, 20);
}

TEST(Captions, CanonicalWording) {
  EXPECT_EQ(canonical_caption(0, 0, kLeft), "a red circle moving left");
  EXPECT_EQ(canonical_caption(2, 1, kStill), "a blue square staying still");
  EXPECT_EQ(canonical_caption(6, 2, kUp), "an orange triangle moving up");
  EXPECT_THROW(canonical_caption(0, 0, 7), reel::UserError);
}

TEST(EvalPrompts, CoverEveryColourMotionFirstAndAreDeterministic) {
  std::vector<EvalPrompt> p = eval_prompts(120, 1234);
  ASSERT_EQ(p.size(), 120u);
  std::set<std::pair<int, int>> first;
  std::set<int> shapes;
  for (int i = 0; i < 35; ++i) {
    first.insert({p[i].color, p[i].motion});
    shapes.insert(p[i].shape);
  }
  EXPECT_EQ(first.size(), 35u);
  EXPECT_EQ(shapes.size(), 3u);
  std::set<std::tuple<int, int, int>> all;
  std::set<uint64_t> seeds;
  for (int i = 0; i < 105; ++i) all.insert({p[i].color, p[i].shape, p[i].motion});
  EXPECT_EQ(all.size(), 105u);
  for (const EvalPrompt& e : p) {
    EXPECT_EQ(e.prompt, canonical_caption(e.color, e.shape, e.motion));
    seeds.insert(e.seed);
  }
  EXPECT_EQ(seeds.size(), p.size());

  std::vector<EvalPrompt> again = eval_prompts(120, 1234), prefix = eval_prompts(50, 1234);
  std::vector<EvalPrompt> other = eval_prompts(120, 99);
  bool differs = false;
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(p[i].prompt, again[i].prompt);
    EXPECT_EQ(p[i].seed, again[i].seed);
    if (i < prefix.size()) EXPECT_EQ(p[i].seed, prefix[i].seed);
    differs |= p[i].prompt != other[i].prompt;
  }
  EXPECT_TRUE(differs);
  EXPECT_TRUE(eval_prompts(0, 1).empty());
}

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("reel_synth_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  return dir;
}

// Every shard of a split as (file name, reader).
std::map<std::string, std::shared_ptr<ShardReader>> read_split(const fs::path& dir) {
  std::map<std::string, std::shared_ptr<ShardReader>> out;
  for (const auto& e : fs::directory_iterator(dir))
    out[e.path().filename().string()] = std::make_shared<ShardReader>(e.path().string());
  return out;
}
}  // namespace

TEST(WriteSynthDataset, WritesShardsPromptsAndManifest) {
  fs::path dir = temp_dir("write");
  SynthOptions o;
  o.out_dir = dir.string();
  o.buckets = {{4, 16, 16}, {1, 16, 16}};
  o.train_per_bucket = 25;
  o.val_per_bucket = 4;
  o.samples_per_shard = 10;
  o.seed = 5;
  o.threads = 3;
  SynthReport report = write_synth_dataset(o);
  EXPECT_EQ(report.train_samples, 50);
  EXPECT_EQ(report.val_samples, 8);
  EXPECT_EQ(report.shards, 3 + 3 + 1 + 1);

  auto train = read_split(dir / "train");
  std::vector<std::string> names;
  for (auto& [name, reader] : train) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"1x16x16_00000.h5", "1x16x16_00001.h5", "1x16x16_00002.h5",
                                             "4x16x16_00000.h5", "4x16x16_00001.h5", "4x16x16_00002.h5"}));
  EXPECT_EQ(train["4x16x16_00002.h5"]->size(), 5);
  EXPECT_EQ(train["4x16x16_00000.h5"]->bucket(), (Bucket{4, 16, 16}));
  EXPECT_EQ(read_split(dir / "val").size(), 2u);

  // The stored pixels are the stored truth: the measured centroid is where the truth says.
  std::set<int> motions;
  for (auto& [name, reader] : train)
    for (int64_t i = 0; i < reader->size(); ++i) {
      Clip clip = reader->read(i);
      EXPECT_EQ(clip.fps, 8);
      EXPECT_TRUE(has_word(clip.caption, color_names()[clip.truth.color])) << clip.caption;
      motions.insert(clip.truth.motion);
      if (clip.truth.textured) continue;
      for (int f = 0; f < int(clip.truth.centers.size()); ++f) {
        Moments m = moments(clip, f);
        EXPECT_NEAR(m.x, clip.truth.centers[f][0], 0.3) << name << " " << i;
        EXPECT_NEAR(m.y, clip.truth.centers[f][1], 0.3) << name << " " << i;
      }
    }
  EXPECT_GE(motions.size(), 4u);

  std::istringstream lines(reel::read_file((dir / "eval_prompts.jsonl").string()));
  std::vector<EvalPrompt> expected = eval_prompts(64, 1234);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    ASSERT_LT(n, expected.size());
    EXPECT_EQ(j.at("prompt"), expected[n].prompt);
    EXPECT_EQ(j.at("seed").get<uint64_t>(), expected[n].seed);
    EXPECT_EQ(j.at("color"), color_names()[expected[n].color]);
    EXPECT_EQ(j.at("shape"), shape_names()[expected[n].shape]);
    EXPECT_EQ(j.at("motion"), motion_names()[expected[n].motion]);
    ++n;
  }
  EXPECT_EQ(n, 64u);
  auto manifest = nlohmann::json::parse(reel::read_file((dir / "dataset.json").string()));
  EXPECT_EQ(manifest.at("buckets"), (std::vector<std::string>{"4x16x16", "1x16x16"}));
  EXPECT_EQ(manifest.at("train").at("samples"), 50);
  EXPECT_EQ(manifest.at("val").at("samples"), 8);
  EXPECT_EQ(manifest.at("fps"), 8);
  EXPECT_EQ(manifest.at("seed"), 5);
  EXPECT_EQ(manifest.at("colors"), color_names());
  // Nothing but final files: no temporary left behind.
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) {
      const std::string ext = e.path().extension().string();
      EXPECT_TRUE(ext == ".h5" || ext == ".json" || ext == ".jsonl") << e.path();
    }
  fs::remove_all(dir);
}

TEST(WriteSynthDataset, SameOutputForAnyThreadCountAndBucketOrder) {
  fs::path one = temp_dir("threads1"), many = temp_dir("threads4");
  SynthOptions o;
  o.buckets = {{2, 8, 8}, {1, 8, 12}};
  o.train_per_bucket = 13;
  o.val_per_bucket = 3;
  o.samples_per_shard = 4;
  o.seed = 9;
  o.out_dir = one.string();
  o.threads = 1;
  write_synth_dataset(o);
  o.out_dir = many.string();
  o.threads = 4;
  o.buckets = {{1, 8, 12}, {2, 8, 8}};
  write_synth_dataset(o);
  for (const char* split : {"train", "val"}) {
    auto a = read_split(one / split), b = read_split(many / split);
    ASSERT_EQ(a.size(), b.size());
    for (auto& [name, ra] : a) {
      ASSERT_TRUE(b.count(name)) << name;
      const auto& rb = b[name];
      ASSERT_EQ(ra->size(), rb->size());
      for (int64_t i = 0; i < ra->size(); ++i) {
        EXPECT_TRUE(torch::equal(ra->read_pixels(i), rb->read_pixels(i))) << name << " " << i;
        EXPECT_EQ(ra->caption(i), rb->caption(i));
        EXPECT_EQ(ra->truth(i).centers, rb->truth(i).centers);
      }
    }
  }
  // A different seed gives different clips.
  fs::path other = temp_dir("seed");
  o.out_dir = other.string();
  o.seed = 10;
  write_synth_dataset(o);
  ShardReader r9((one / "train" / "2x8x8_00000.h5").string()), r10((other / "train" / "2x8x8_00000.h5").string());
  EXPECT_FALSE(torch::equal(r9.read_pixels(0), r10.read_pixels(0)));
  for (const fs::path& d : {one, many, other}) fs::remove_all(d);
}

TEST(WriteSynthDataset, RefusesBadOptionsAndStaleShards) {
  fs::path dir = temp_dir("bad");
  SynthOptions o;
  o.out_dir = dir.string();
  o.buckets = {{2, 8, 8}};
  o.train_per_bucket = 3;
  o.val_per_bucket = 1;
  auto refused = [&](SynthOptions bad, const std::string& needle) {
    try {
      write_synth_dataset(bad);
      ADD_FAILURE() << "accepted options, expected an error about " << needle;
    } catch (const reel::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  SynthOptions bad = o;
  bad.buckets = {{2, 8, 8}, {2, 8, 8}};
  refused(bad, "twice");
  bad = o;
  bad.buckets = {{2, 4, 8}};
  refused(bad, "too small");
  bad = o;
  bad.samples_per_shard = 0;
  refused(bad, "samples_per_shard");
  bad = o;
  bad.out_dir = "";
  refused(bad, "out_dir");

  write_synth_dataset(o);
  write_synth_dataset(o);  // rewriting the same dataset is fine
  reel::write_file_atomic((dir / "train" / "old_00007.h5").string(), "stale");
  refused(o, "old_00007.h5");
  fs::remove_all(dir);
}
