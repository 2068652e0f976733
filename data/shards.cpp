// Reading and writing "reel-shard-1" HDF5 shards (format in shards.h), every HDF5 call under
// hdf5_mutex().
#include "data/shards.h"

#include <utility>

#include "common/error.h"
#include "data/internal/shard_hdf5.h"

namespace reel::data {

namespace {

using namespace detail;
constexpr int kChannels = 3;

void check_truth_ranges(const Truth& t, const std::string& where) {
  auto in = [](int v, const std::vector<std::string>& names) { return v >= 0 && v < int(names.size()); };
  if (!in(t.color, color_names()) || !in(t.shape, shape_names()) || !in(t.motion, motion_names()) ||
      !in(t.background, background_names()))
    fail(where, ": truth out of range (color ", t.color, ", shape ", t.shape, ", motion ", t.motion,
         ", background ", t.background, "); valid: color < ", color_names().size(), ", shape < ",
         shape_names().size(), ", motion < ", motion_names().size(), ", background < ", background_names().size());
}

}  // namespace

// ---- ShardWriter ----------------------------------------------------------------------------

struct ShardWriter::Handles {
  explicit Handles(const std::string& path) : file(path) {}
  PartialFile file;
  Id pixels;  // destroyed before the file
};

ShardWriter::ShardWriter(std::string path, Bucket bucket, ShardLayout layout)
    : path_(std::move(path)), bucket_(bucket), layout_(layout) {
  REEL_CHECK(bucket_.frames > 0 && bucket_.height > 0 && bucket_.width > 0, "bad bucket ", bucket_.name());
  REEL_CHECK(layout_.audio_rate >= 0 && (layout_.audio_rate == 0 || layout_.audio_samples >= 1),
             "bad audio layout for shard '", path_, "': rate ", layout_.audio_rate, ", samples ", layout_.audio_samples);
  Hdf5Lock lock;
  auto h = std::make_unique<Handles>(path_);  // its partial file goes if what follows throws
  h->pixels = create_rows(h->file.get(), path_, "pixels", H5T_STD_U8LE,
                          {hsize_t(bucket_.frames), hsize_t(bucket_.height), hsize_t(bucket_.width), kChannels});
  h_ = std::move(h);
}

ShardWriter::~ShardWriter() {
  Hdf5Lock lock;
  h_.reset();  // an unclosed writer's partial file is removed
}

void ShardWriter::add(const Clip& clip) {
  REEL_CHECK(h_, "ShardWriter::add after close() on '", path_, "'");
  const int64_t F = bucket_.frames, H = bucket_.height, W = bucket_.width;
  const std::string where = cat("clip ", size(), " for shard '", path_, "' (bucket ", bucket_.name(), ")");
  if (!clip.pixels.defined() || clip.pixels.scalar_type() != torch::kUInt8 ||
      clip.pixels.sizes() != torch::IntArrayRef({F, H, W, kChannels}))
    fail(where, ": pixels must be uint8 of shape [", F, ", ", H, ", ", W, ", 3], got ",
         clip.pixels.defined() ? cat(clip.pixels.scalar_type(), " ", clip.pixels.sizes()) : std::string("none"));
  if (layout_.truth) {
    if (int64_t(clip.truth.centers.size()) != F)
      fail(where, ": truth has ", clip.truth.centers.size(), " centers, expected one per frame (", F, ")");
    check_truth_ranges(clip.truth, where);
  }
  const int64_t S = layout_.audio_samples;
  if (clip.audio.defined() && (layout_.audio_rate == 0 || clip.audio.scalar_type() != torch::kInt16 ||
                               clip.audio.sizes() != torch::IntArrayRef({S})))
    fail(where, ": audio must be int16 of shape [", S, "] in a shard with audio, got ", clip.audio.scalar_type(), " ",
         clip.audio.sizes(), layout_.audio_rate == 0 ? " (this shard has no audio)" : "");
  torch::Tensor pixels = clip.pixels.contiguous();

  Hdf5Lock lock;
  append_rows(h_->pixels.get(), path_, "pixels", H5T_NATIVE_UINT8, hsize_t(size()), 1, pixels.data_ptr());
  captions_.push_back(clip.caption);
  fps_.push_back(clip.fps);
  if (layout_.truth) truths_.push_back(clip.truth);
  if (layout_.source) sources_.push_back(clip.source);
  if (layout_.audio_rate > 0) {
    has_audio_.push_back(clip.audio.defined() ? 1 : 0);
    if (clip.audio.defined()) {
      const torch::Tensor a = clip.audio.contiguous();
      audio_.insert(audio_.end(), a.data_ptr<int16_t>(), a.data_ptr<int16_t>() + S);
    } else {
      audio_.resize(audio_.size() + size_t(S), 0);
    }
  }
}

void ShardWriter::close() {
  REEL_CHECK(h_, "ShardWriter::close called twice on '", path_, "'");
  try {
    Hdf5Lock lock;
    const hid_t file = h_->file.get();
    const hsize_t n = hsize_t(size());
    write_string_attr(file, path_, "format", kShardFormat);
    write_string_attr(file, path_, "bucket", bucket_.name());
    write_int_attr(file, path_, "frames", bucket_.frames);
    write_int_attr(file, path_, "height", bucket_.height);
    write_int_attr(file, path_, "width", bucket_.width);
    write_int_attr(file, path_, "channels", kChannels);
    write_int_attr(file, path_, "count", int64_t(n));

    std::vector<const char*> caption_ptrs(n);
    for (hsize_t i = 0; i < n; ++i) caption_ptrs[i] = captions_[i].c_str();
    Id string_type(utf8_string_type(path_));
    write_dataset(file, path_, "caption", string_type.get(), string_type.get(), {n}, caption_ptrs.data());
    write_dataset(file, path_, "fps", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, fps_.data());
    if (layout_.truth) write_truth(file);
    if (layout_.source) write_sources(file);
    if (layout_.audio_rate > 0) {
      write_int_attr(file, path_, "audio_rate", layout_.audio_rate);
      write_int_attr(file, path_, "audio_samples", layout_.audio_samples);
      write_dataset(file, path_, "audio", H5T_STD_I16LE, H5T_NATIVE_INT16, {n, hsize_t(layout_.audio_samples)},
                    audio_.data());
      write_dataset(file, path_, "has_audio", H5T_STD_U8LE, H5T_NATIVE_UINT8, {n}, has_audio_.data());
    }
    h_->pixels.reset();
    h_->file.publish();
  } catch (...) {
    Hdf5Lock lock;
    h_.reset();
    throw;
  }
  Hdf5Lock lock;
  h_.reset();
}

void ShardWriter::write_sources(int64_t file) {
  const hsize_t n = hsize_t(size());
  Id group(check(H5Gcreate2(file, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path_, "creating group 'meta'"));
  std::vector<const char*> paths(n);
  std::vector<double> start(n), fps(n);
  std::vector<int32_t> sizes(n * 2);
  for (hsize_t i = 0; i < n; ++i) {
    const SampleSource& src = sources_[i];
    paths[i] = src.path.c_str();
    start[i] = src.start, fps[i] = src.fps;
    sizes[i * 2] = src.width, sizes[i * 2 + 1] = src.height;
  }
  Id string_type(utf8_string_type(path_));
  const hid_t g = group.get();
  write_dataset(g, path_, "source", string_type.get(), string_type.get(), {n}, paths.data());
  write_dataset(g, path_, "start", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, start.data());
  write_dataset(g, path_, "source_fps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, fps.data());
  write_dataset(g, path_, "source_size", H5T_STD_I32LE, H5T_NATIVE_INT32, {n, 2}, sizes.data());
}

void ShardWriter::write_truth(int64_t file) {
  const hsize_t n = hsize_t(size()), F = hsize_t(bucket_.frames);
  Id group(check(H5Gcreate2(file, "truth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path_, "creating group 'truth'"));
    std::vector<int32_t> color(n), shape(n), motion(n), background(n);
    std::vector<uint8_t> textured(n);
    std::vector<float> size(n), centers(n * F * 2);
    for (hsize_t i = 0; i < n; ++i) {
      const Truth& t = truths_[i];
      color[i] = t.color, shape[i] = t.shape, motion[i] = t.motion, background[i] = t.background;
      textured[i] = t.textured ? 1 : 0;
      size[i] = t.size;
      for (hsize_t f = 0; f < F; ++f) {
        centers[(i * F + f) * 2] = t.centers[f][0];
        centers[(i * F + f) * 2 + 1] = t.centers[f][1];
      }
    }
    const hid_t g = group.get();
    write_dataset(g, path_, "color", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, color.data());
    write_dataset(g, path_, "shape", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, shape.data());
    write_dataset(g, path_, "motion", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, motion.data());
    write_dataset(g, path_, "background", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, background.data());
    write_dataset(g, path_, "textured", H5T_STD_U8LE, H5T_NATIVE_UINT8, {n}, textured.data());
    write_dataset(g, path_, "size", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, size.data());
    write_dataset(g, path_, "centers", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n, F, 2}, centers.data());
}

std::string shard_format(const std::string& path) {
  Hdf5Lock lock;
  const Id file = open_readonly(path, "shard", "re-create it");
  return read_string_attr(file.get(), path, "format");
}

// ---- ShardReader ----------------------------------------------------------------------------

struct ShardReader::Handles {
  Id file, pixels, audio;  // destroyed datasets first
};

ShardReader::ShardReader(const std::string& path) : path_(path) {
  Hdf5Lock lock;
  auto h = std::make_unique<Handles>();
  h->file = open_readonly(path_, "shard", "reel shards that are truncated or corrupted are refused: re-create it, "
                                          "e.g. with `reel data synth`");
  const hid_t file = h->file.get();

  const std::string format = read_string_attr(file, path_, "format");
  if (format != kShardFormat)
    fail("'", path_, "' has format '", format, "', but this build reads '", kShardFormat, "'");
  const std::string bucket_name = read_string_attr(file, path_, "bucket");
  try {
    bucket_ = Bucket::parse(bucket_name);
  } catch (const UserError& e) {
    fail("shard '", path_, "': ", e.what());
  }
  const int64_t frames = read_int_attr(file, path_, "frames"), height = read_int_attr(file, path_, "height");
  const int64_t width = read_int_attr(file, path_, "width"), channels = read_int_attr(file, path_, "channels");
  const int64_t count = read_int_attr(file, path_, "count");
  if (frames != bucket_.frames || height != bucket_.height || width != bucket_.width || channels != kChannels)
    fail("shard '", path_, "': attributes frames/height/width/channels = ", frames, "/", height, "/", width, "/",
         channels, " disagree with bucket '", bucket_name, "' and 3 channels");
  if (count < 0) fail("shard '", path_, "': attribute 'count' is negative (", count, ")");

  const hsize_t n = hsize_t(count);
  h->pixels = open_dataset(file, path_, "pixels", H5T_INTEGER,
                           {n, hsize_t(frames), hsize_t(height), hsize_t(width), kChannels});
  {
    Id type(check_read(H5Dget_type(h->pixels.get()), path_, "reading the type of 'pixels'"));
    if (H5Tget_size(type.get()) != 1 || H5Tget_sign(type.get()) != H5T_SGN_NONE)
      fail("shard '", path_, "': dataset 'pixels' must hold uint8");
  }
  captions_ = read_strings(file, path_, "caption", n);
  fps_ = read_numbers<int32_t>(file, path_, "fps", H5T_INTEGER, H5T_NATIVE_INT32, {n});
  layout_.truth = exists(file, "truth");
  layout_.source = exists(file, "meta");
  if (exists(file, "audio")) {
    layout_.audio_rate = int(read_int_attr(file, path_, "audio_rate"));
    layout_.audio_samples = read_int_attr(file, path_, "audio_samples");
    if (layout_.audio_rate < 1 || layout_.audio_samples < 1)
      fail("shard '", path_, "': audio_rate ", layout_.audio_rate, " and audio_samples ", layout_.audio_samples,
           " must be positive");
    h->audio = open_dataset(file, path_, "audio", H5T_INTEGER, {n, hsize_t(layout_.audio_samples)});
    has_audio_ = read_numbers<uint8_t>(file, path_, "has_audio", H5T_INTEGER, H5T_NATIVE_UINT8, {n});
  }
  if (layout_.source) read_sources(file);
  if (layout_.truth) read_truth(file);
  h_ = std::move(h);
}

void ShardReader::read_sources(int64_t file) {
  const hsize_t n = hsize_t(captions_.size());
  const std::vector<std::string> paths = read_strings(file, path_, "meta/source", n);
  const auto start = read_numbers<double>(file, path_, "meta/start", H5T_FLOAT, H5T_NATIVE_DOUBLE, {n});
  const auto fps = read_numbers<double>(file, path_, "meta/source_fps", H5T_FLOAT, H5T_NATIVE_DOUBLE, {n});
  const auto sizes = read_numbers<int32_t>(file, path_, "meta/source_size", H5T_INTEGER, H5T_NATIVE_INT32, {n, 2});
  sources_.resize(n);
  for (hsize_t i = 0; i < n; ++i) sources_[i] = {paths[i], start[i], fps[i], sizes[i * 2], sizes[i * 2 + 1]};
}

void ShardReader::read_truth(int64_t file) {
  const hsize_t n = hsize_t(captions_.size()), F = hsize_t(bucket_.frames);
  auto ints = [&](const char* name) {
    return read_numbers<int32_t>(file, path_, cat("truth/", name), H5T_INTEGER, H5T_NATIVE_INT32, {n});
  };
  const std::vector<int32_t> color = ints("color"), shape = ints("shape"), motion = ints("motion");
  const std::vector<int32_t> background = ints("background");
  const auto textured = read_numbers<uint8_t>(file, path_, "truth/textured", H5T_INTEGER, H5T_NATIVE_UINT8, {n});
  const auto size = read_numbers<float>(file, path_, "truth/size", H5T_FLOAT, H5T_NATIVE_FLOAT, {n});
  const auto centers = read_numbers<float>(file, path_, "truth/centers", H5T_FLOAT, H5T_NATIVE_FLOAT, {n, F, 2});
  truths_.resize(n);
  for (hsize_t i = 0; i < n; ++i) {
    Truth& t = truths_[i];
    t.color = color[i], t.shape = shape[i], t.motion = motion[i], t.background = background[i];
    t.textured = textured[i] != 0;
    t.size = size[i];
    t.centers.resize(F);
    for (hsize_t f = 0; f < F; ++f) t.centers[f] = {centers[(i * F + f) * 2], centers[(i * F + f) * 2 + 1]};
    check_truth_ranges(t, cat("shard '", path_, "' sample ", i));
  }
}

ShardReader::~ShardReader() {
  Hdf5Lock lock;
  h_.reset();
}

void ShardReader::check_index(int64_t index) const {
  if (index < 0 || index >= size())
    fail("sample index ", index, " is out of range for shard '", path_, "' with ", size(), " samples");
}

torch::Tensor ShardReader::read_pixels(int64_t index) const {
  check_index(index);
  const hsize_t F = hsize_t(bucket_.frames), H = hsize_t(bucket_.height), W = hsize_t(bucket_.width);
  torch::Tensor pixels = torch::empty({int64_t(F), int64_t(H), int64_t(W), kChannels}, torch::kUInt8);
  Hdf5Lock lock;
  read_row(h_->pixels.get(), path_, "pixels", H5T_NATIVE_UINT8, hsize_t(index), pixels.data_ptr());
  return pixels;
}

Clip ShardReader::read(int64_t index) const {
  Clip clip;
  clip.pixels = read_pixels(index);
  clip.caption = captions_[index];
  clip.fps = fps_[index];
  if (layout_.truth) clip.truth = truths_[index];
  if (layout_.source) clip.source = sources_[index];
  clip.audio = read_audio(index);
  return clip;
}

torch::Tensor ShardReader::read_audio(int64_t index) const {
  check_index(index);
  if (layout_.audio_rate == 0 || !has_audio_[index]) return {};
  const hsize_t S = hsize_t(layout_.audio_samples);
  torch::Tensor audio = torch::empty({int64_t(S)}, torch::kInt16);
  Hdf5Lock lock;
  read_row(h_->audio.get(), path_, "audio", H5T_NATIVE_INT16, hsize_t(index), audio.data_ptr());
  return audio;
}

const SampleSource& ShardReader::source(int64_t index) const {
  check_index(index);
  if (!layout_.source) fail("shard '", path_, "' has no per-sample source metadata (meta/); it is not an ingested shard");
  return sources_[index];
}

const std::string& ShardReader::caption(int64_t index) const {
  check_index(index);
  return captions_[index];
}

const Truth& ShardReader::truth(int64_t index) const {
  check_index(index);
  if (!layout_.truth)
    fail("shard '", path_, "' holds no truth (truth/): only synthetic datasets from `reel data synth` do");
  return truths_[index];
}

int ShardReader::fps(int64_t index) const {
  check_index(index);
  return fps_[index];
}

}  // namespace reel::data
