// "reel-audio-shard-1" files (format in audio_shards.h), every HDF5 call under hdf5_mutex().
#include "data/audio_shards.h"

#include <filesystem>
#include <utility>

#include "common/error.h"
#include "common/fs.h"
#include "data/internal/shard_hdf5.h"

namespace reel::data {
namespace fs = std::filesystem;
using namespace detail;

namespace {
constexpr const char* kAudioShardFormat = "reel-audio-shard-1";
}

AudioShardWriter::AudioShardWriter(std::string path, int rate, int64_t samples)
    : path_(std::move(path)), rate_(rate), samples_(samples) {
  REEL_CHECK(rate_ >= 1 && samples_ >= 1, "audio shard '", path_, "': bad rate ", rate_, " or samples ", samples_);
}

void AudioShardWriter::add(AudioClip clip) {
  if (!clip.audio.defined() || clip.audio.scalar_type() != torch::kInt16 ||
      clip.audio.sizes() != torch::IntArrayRef({samples_}))
    fail("audio clip ", size(), " for shard '", path_, "': audio must be int16 of shape [", samples_, "], got ",
         clip.audio.defined() ? cat(clip.audio.scalar_type(), " ", clip.audio.sizes()) : std::string("none"));
  clip.audio = clip.audio.contiguous();
  clips_.push_back(std::move(clip));
}

void AudioShardWriter::close() {
  const fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  write_atomically(path_, [&](const std::string& tmp) {
    Hdf5Lock lock;
    Id file = create_file(tmp, path_);
    const hid_t f = file.get();
    const hsize_t n = hsize_t(clips_.size()), S = hsize_t(samples_);
    write_string_attr(f, path_, "format", kAudioShardFormat);
    write_int_attr(f, path_, "rate", rate_);
    write_int_attr(f, path_, "samples", samples_);
    write_int_attr(f, path_, "count", int64_t(n));
    std::vector<int16_t> audio(n * S);
    std::vector<const char*> captions(n), sources(n);
    std::vector<double> starts(n);
    for (hsize_t i = 0; i < n; ++i) {
      std::copy_n(clips_[i].audio.data_ptr<int16_t>(), S, audio.data() + i * S);
      captions[i] = clips_[i].caption.c_str();
      sources[i] = clips_[i].source.c_str();
      starts[i] = clips_[i].start;
    }
    Id text(utf8_string_type(path_));
    write_dataset(f, path_, "audio", H5T_STD_I16LE, H5T_NATIVE_INT16, {n, S}, audio.data());
    write_dataset(f, path_, "caption", text.get(), text.get(), {n}, captions.data());
    Id meta(check(H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path_, "creating group 'meta'"));
    write_dataset(meta.get(), path_, "source", text.get(), text.get(), {n}, sources.data());
    write_dataset(meta.get(), path_, "start", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, starts.data());
    meta.reset();
    check(H5Fclose(file.release()), path_, "closing the file");
  });
}

AudioShard read_audio_shard(const std::string& path) {
  Hdf5Lock lock;
  const Id file = open_readonly(path, "audio shard", "re-create it with `reel data ingest`");
  const hid_t f = file.get();
  const std::string format = read_string_attr(f, path, "format");
  if (format != kAudioShardFormat)
    fail("'", path, "' has format '", format, "', but an audio shard is '", kAudioShardFormat, "'");
  AudioShard shard;
  shard.rate = int(read_int_attr(f, path, "rate"));
  shard.samples = read_int_attr(f, path, "samples");
  const int64_t count = read_int_attr(f, path, "count");
  if (shard.rate < 1 || shard.samples < 1 || count < 0)
    fail("audio shard '", path, "': rate ", shard.rate, ", samples ", shard.samples, ", count ", count, " are invalid");
  const hsize_t n = hsize_t(count), S = hsize_t(shard.samples);
  const auto audio = read_numbers<int16_t>(f, path, "audio", H5T_INTEGER, H5T_NATIVE_INT16, {n, S});
  const auto captions = read_strings(f, path, "caption", n);
  const auto sources = read_strings(f, path, "meta/source", n);
  const auto starts = read_numbers<double>(f, path, "meta/start", H5T_FLOAT, H5T_NATIVE_DOUBLE, {n});
  for (hsize_t i = 0; i < n; ++i) {
    torch::Tensor a = torch::from_blob(const_cast<int16_t*>(audio.data() + i * S), {int64_t(S)}, torch::kInt16).clone();
    shard.clips.push_back({a, captions[i], sources[i], starts[i]});
  }
  return shard;
}

}  // namespace reel::data
