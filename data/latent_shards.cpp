// "reel-latent-shard-1" files (format in latent_shards.h), every HDF5 call under hdf5_mutex().
#include "data/latent_shards.h"

#include <sstream>
#include <utility>

#include "common/error.h"
#include "data/internal/shard_hdf5.h"

namespace reel::data {
using namespace detail;

namespace {

std::string shape_name(const std::array<int64_t, 4>& s) { return cat(s[0], "x", s[1], "x", s[2], "x", s[3]); }

std::array<int64_t, 4> parse_shape(const std::string& text, const std::string& path) {
  std::array<int64_t, 4> s{};
  std::stringstream ss(text);
  std::string part;
  for (size_t i = 0; i < 4; ++i) {
    if (!std::getline(ss, part, 'x')) fail("latent shard '", path, "': attribute latent = '", text, "' is not CxTxHxW");
    try {
      s[i] = std::stoll(part);
    } catch (const std::exception&) {
      fail("latent shard '", path, "': attribute latent = '", text, "' is not CxTxHxW");
    }
    if (s[i] < 1) fail("latent shard '", path, "': attribute latent = '", text, "' has a size below 1");
  }
  return s;
}

}  // namespace

struct LatentShardWriter::Handles {
  explicit Handles(const std::string& path) : file(path) {}
  PartialFile file;
  Id latents;  // destroyed before the file
};
struct LatentShardReader::Handles {
  Id file, latents;
};

LatentShardWriter::LatentShardWriter(std::string path, LatentShardInfo info)
    : path_(std::move(path)), info_(std::move(info)) {
  Hdf5Lock lock;
  auto h = std::make_unique<Handles>(path_);  // its partial file goes if what follows throws
  const auto& l = info_.latent;
  h->latents = create_rows(h->file.get(), path_, "latents", H5T_STD_U16LE,
                           {hsize_t(l[0]), hsize_t(l[1]), hsize_t(l[2]), hsize_t(l[3])});
  h_ = std::move(h);
}

LatentShardWriter::~LatentShardWriter() {
  Hdf5Lock lock;
  h_.reset();  // an unclosed writer's partial file is removed
}

void LatentShardWriter::add(const torch::Tensor& latents, const std::vector<std::string>& captions,
                            const std::vector<int>& fps) {
  REEL_CHECK(h_, "LatentShardWriter::add after close() on '", path_, "'");
  const auto& l = info_.latent;
  const int64_t B = latents.defined() && latents.dim() == 5 ? latents.size(0) : -1;
  if (B < 0 || latents.sizes().slice(1) != torch::IntArrayRef({l[0], l[1], l[2], l[3]}) ||
      !latents.is_floating_point() || int64_t(captions.size()) != B || int64_t(fps.size()) != B)
    fail("latent shard '", path_, "': expected latents (B, ", shape_name(l), ") with B captions and fps, got ",
         latents.defined() ? cat(latents.scalar_type(), " ", latents.sizes()) : std::string("none"), ", ",
         captions.size(), " captions, ", fps.size(), " fps");
  const torch::Tensor bits = latents.to(torch::kCPU).to(torch::kBFloat16).contiguous().view(torch::kInt16);
  Hdf5Lock lock;
  append_rows(h_->latents.get(), path_, "latents", H5T_NATIVE_UINT16, hsize_t(size()), hsize_t(B), bits.data_ptr());
  captions_.insert(captions_.end(), captions.begin(), captions.end());
  fps_.insert(fps_.end(), fps.begin(), fps.end());
}

void LatentShardWriter::close() {
  REEL_CHECK(h_, "LatentShardWriter::close called twice on '", path_, "'");
  try {
    Hdf5Lock lock;
    const hid_t file = h_->file.get();
    const hsize_t n = hsize_t(size());
    write_string_attr(file, path_, "format", kLatentShardFormat);
    write_string_attr(file, path_, "bucket", info_.bucket.name());
    write_string_attr(file, path_, "latent", shape_name(info_.latent));
    write_string_attr(file, path_, "dtype", "bfloat16");
    write_string_attr(file, path_, "source", info_.source);
    write_string_attr(file, path_, "tae", info_.tae);
    write_int_attr(file, path_, "count", int64_t(n));
    std::vector<const char*> caption_ptrs(n);
    for (hsize_t i = 0; i < n; ++i) caption_ptrs[i] = captions_[i].c_str();
    Id text(utf8_string_type(path_));
    write_dataset(file, path_, "caption", text.get(), text.get(), {n}, caption_ptrs.data());
    write_dataset(file, path_, "fps", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, fps_.data());
    h_->latents.reset();
    h_->file.publish();
  } catch (...) {
    Hdf5Lock lock;
    h_.reset();
    throw;
  }
  Hdf5Lock lock;
  h_.reset();
}

LatentShardReader::LatentShardReader(const std::string& path) : path_(path) {
  Hdf5Lock lock;
  auto h = std::make_unique<Handles>();
  h->file = open_readonly(path_, "latent shard", "re-create it with `reel data encode`");
  const hid_t file = h->file.get();
  const std::string format = read_string_attr(file, path_, "format");
  if (format != kLatentShardFormat) fail("'", path_, "' has format '", format, "', but a latent shard is '", kLatentShardFormat, "'");
  try {
    info_.bucket = Bucket::parse(read_string_attr(file, path_, "bucket"));
  } catch (const UserError& e) {
    fail("latent shard '", path_, "': ", e.what());
  }
  info_.latent = parse_shape(read_string_attr(file, path_, "latent"), path_);
  const std::string dtype = read_string_attr(file, path_, "dtype");
  if (dtype != "bfloat16") fail("latent shard '", path_, "': dtype '", dtype, "' is not 'bfloat16'");
  info_.source = read_string_attr(file, path_, "source");
  info_.tae = read_string_attr(file, path_, "tae");
  const int64_t count = read_int_attr(file, path_, "count");
  if (count < 0) fail("latent shard '", path_, "': attribute 'count' is negative (", count, ")");
  const hsize_t n = hsize_t(count);
  const auto& l = info_.latent;
  h->latents = open_dataset(file, path_, "latents", H5T_INTEGER, {n, hsize_t(l[0]), hsize_t(l[1]), hsize_t(l[2]), hsize_t(l[3])});
  captions_ = read_strings(file, path_, "caption", n);
  fps_ = read_numbers<int32_t>(file, path_, "fps", H5T_INTEGER, H5T_NATIVE_INT32, {n});
  h_ = std::move(h);
}

LatentShardReader::~LatentShardReader() {
  Hdf5Lock lock;
  h_.reset();
}

torch::Tensor LatentShardReader::read(int64_t index) const {
  if (index < 0 || index >= size())
    fail("sample index ", index, " is out of range for latent shard '", path_, "' with ", size(), " samples");
  const auto& l = info_.latent;
  torch::Tensor bits = torch::empty({l[0], l[1], l[2], l[3]}, torch::kInt16);
  Hdf5Lock lock;
  read_row(h_->latents.get(), path_, "latents", H5T_NATIVE_UINT16, hsize_t(index), bits.data_ptr());
  return bits.view(torch::kBFloat16).to(torch::kFloat32);
}

}  // namespace reel::data
