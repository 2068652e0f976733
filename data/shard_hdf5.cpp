// HDF5 helpers of the shard format (declared in data/internal/shard_hdf5.h).
#include "data/internal/shard_hdf5.h"

#include <unistd.h>

#include <filesystem>

#include "common/fs.h"

namespace reel::data {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

namespace detail {

std::string hdf5_message() {
  std::string message;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* out) -> herr_t {
        if (n == 0 && e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &message);
  H5Eclear2(H5E_DEFAULT);
  return message.empty() ? "unknown HDF5 error" : message;
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

hid_t utf8_string_type(const std::string& path) {
  hid_t type = check(H5Tcopy(H5T_C_S1), path, "creating a string type");
  check(H5Tset_size(type, H5T_VARIABLE), path, "creating a string type");
  check(H5Tset_cset(type, H5T_CSET_UTF8), path, "creating a string type");
  return type;
}

// ---- writing ----------------------------------------------------------------------------

void write_string_attr(hid_t loc, const std::string& path, const char* name, const std::string& value) {
  Id type(utf8_string_type(path));
  Id space(check(H5Screate(H5S_SCALAR), path, "creating a dataspace"));
  Id attr(check(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                cat("creating attribute '", name, "'")));
  const char* data = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &data), path, cat("writing attribute '", name, "'"));
}

void write_int_attr(hid_t loc, const std::string& path, const char* name, int64_t value) {
  Id space(check(H5Screate(H5S_SCALAR), path, "creating a dataspace"));
  Id attr(check(H5Acreate2(loc, name, H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                cat("creating attribute '", name, "'")));
  const int32_t v = int32_t(value);
  check(H5Awrite(attr.get(), H5T_NATIVE_INT32, &v), path, cat("writing attribute '", name, "'"));
}

void write_dataset(hid_t loc, const std::string& path, const char* name, hid_t file_type, hid_t mem_type,
                   const std::vector<hsize_t>& dims, const void* data) {
  Id space(check(H5Screate_simple(int(dims.size()), dims.data(), nullptr), path, "creating a dataspace"));
  Id dset(check(H5Dcreate2(loc, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path,
                cat("creating dataset '", name, "'")));
  if (dims[0] > 0)
    check(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
          cat("writing dataset '", name, "'"));
}

// ---- reading ----------------------------------------------------------------------------

Id create_file(const std::string& tmp, const std::string& path) {
  Id fapl(check(H5Pcreate(H5P_FILE_ACCESS), path, "creating file properties"));
  check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), path, "setting the file format");
  return Id(check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), path,
                  cat("creating temporary file '", tmp, "'")));
}

PartialFile::PartialFile(std::string path)
    : path_(std::move(path)), tmp_(path_ + ".partial." + std::to_string(::getpid())) {
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  Hdf5Lock lock;
  file_ = create_file(tmp_, path_);
}

PartialFile::~PartialFile() {
  if (published_) return;
  Hdf5Lock lock;
  file_.reset();
  std::error_code ec;
  std::filesystem::remove(tmp_, ec);
}

void PartialFile::publish() {
  {
    Hdf5Lock lock;
    check(H5Fclose(file_.release()), path_, cat("closing temporary file '", tmp_, "'"));
  }
  publish_file(tmp_, path_);  // removes tmp_ itself when it fails
  published_ = true;
}

Id open_readonly(const std::string& path, const std::string& kind, const std::string& remedy) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(kind, " '", path, "' does not exist or is not a regular file");
  Hdf5Lock lock;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) fail("'", path, "' is not a readable HDF5 file (", hdf5_message(), "); ", remedy);
  return Id(file);
}

Id create_rows(hid_t file, const std::string& path, const char* name, hid_t file_type, const std::vector<hsize_t>& row) {
  std::vector<hsize_t> dims = {0}, max = {H5S_UNLIMITED}, chunk = {1};
  for (hsize_t d : row) dims.push_back(d), max.push_back(d), chunk.push_back(d);
  const int rank = int(dims.size());
  Id space(check(H5Screate_simple(rank, dims.data(), max.data()), path, cat("creating the ", name, " dataspace")));
  Id dcpl(check(H5Pcreate(H5P_DATASET_CREATE), path, "creating dataset properties"));
  check(H5Pset_chunk(dcpl.get(), rank, chunk.data()), path, cat("setting the ", name, " chunking"));
  check(H5Pset_fletcher32(dcpl.get()), path, cat("setting the ", name, " checksum"));
  return Id(check(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), path,
                  cat("creating dataset '", name, "'")));
}

void append_rows(hid_t dset, const std::string& path, const char* name, hid_t mem_type, hsize_t at, hsize_t count,
                 const void* data) {
  Id old_space(check(H5Dget_space(dset), path, cat("reading the ", name, " dataspace")));
  const int rank = check(H5Sget_simple_extent_ndims(old_space.get()), path, cat("reading the ", name, " shape"));
  std::vector<hsize_t> dims(size_t(rank), 0);
  H5Sget_simple_extent_dims(old_space.get(), dims.data(), nullptr);
  dims[0] = at + count;
  check(H5Dset_extent(dset, dims.data()), path, cat("growing dataset '", name, "'"));
  Id file_space(check(H5Dget_space(dset), path, cat("reading the ", name, " dataspace")));
  std::vector<hsize_t> start(size_t(rank), 0), counts = dims;
  start[0] = at;
  counts[0] = count;
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, counts.data(), nullptr), path,
        cat("selecting ", name, " rows"));
  Id mem_space(check(H5Screate_simple(rank, counts.data(), nullptr), path, "creating a dataspace"));
  check(H5Dwrite(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, data), path,
        cat("writing ", name, " rows ", at, "..", at + count - 1));
}

void read_row(hid_t dset, const std::string& path, const char* name, hid_t mem_type, hsize_t index, void* out) {
  Id file_space(check_read(H5Dget_space(dset), path, cat("reading the ", name, " dataspace")));
  const int rank = check_read(H5Sget_simple_extent_ndims(file_space.get()), path, cat("reading the ", name, " shape"));
  std::vector<hsize_t> start(size_t(rank), 0), count(size_t(rank), 0);
  H5Sget_simple_extent_dims(file_space.get(), count.data(), nullptr);
  start[0] = index;
  count[0] = 1;
  check_read(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), path,
             cat("selecting ", name, " row ", index));
  Id mem_space(check_read(H5Screate_simple(rank - 1, count.data() + 1, nullptr), path, "creating a dataspace"));
  if (H5Dread(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out) < 0)
    fail("shard '", path, "': cannot read ", name, " of sample ", index, " (", hdf5_message(),
         "); the file is corrupted: re-create it");
}

bool exists(hid_t file, const std::string& name) {
  for (size_t end = name.find('/');; end = name.find('/', end + 1)) {
    std::string prefix = name.substr(0, end);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (end == std::string::npos) return true;
  }
}

std::string read_string_attr(hid_t file, const std::string& path, const char* name) {
  if (H5Aexists(file, name) <= 0)
    fail("'", path, "' is not a reel shard: file attribute '", name, "' is missing (expected format '", kShardFormat, "')");
  Id attr(check_read(H5Aopen(file, name, H5P_DEFAULT), path, cat("opening attribute '", name, "'")));
  Id type(check_read(H5Aget_type(attr.get()), path, cat("reading attribute '", name, "'")));
  if (H5Tget_class(type.get()) != H5T_STRING)
    fail("'", path, "' is not a reel shard: attribute '", name, "' is not a string");
  Id space(check_read(H5Aget_space(attr.get()), path, cat("reading attribute '", name, "'")));
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail("'", path, "' is not a reel shard: attribute '", name, "' is not a single string");
  if (H5Tis_variable_str(type.get()) > 0) {
    Id mem(utf8_string_type(path));
    char* data = nullptr;
    check_read(H5Aread(attr.get(), mem.get(), &data), path, cat("reading attribute '", name, "'"));
    std::string value = data ? data : "";
    H5free_memory(data);
    return value;
  }
  std::string value(H5Tget_size(type.get()), '\0');
  check_read(H5Aread(attr.get(), type.get(), value.data()), path, cat("reading attribute '", name, "'"));
  return value.substr(0, value.find('\0'));
}

int64_t read_int_attr(hid_t file, const std::string& path, const char* name) {
  if (H5Aexists(file, name) <= 0) fail("'", path, "' is not a reel shard: file attribute '", name, "' is missing");
  Id attr(check_read(H5Aopen(file, name, H5P_DEFAULT), path, cat("opening attribute '", name, "'")));
  Id type(check_read(H5Aget_type(attr.get()), path, cat("reading attribute '", name, "'")));
  Id space(check_read(H5Aget_space(attr.get()), path, cat("reading attribute '", name, "'")));
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1)
    fail("'", path, "' is not a reel shard: attribute '", name, "' is not a single integer");
  int64_t v = 0;
  check_read(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), path, cat("reading attribute '", name, "'"));
  return v;
}

Id open_dataset(hid_t file, const std::string& path, const std::string& name, H5T_class_t cls,
                const std::vector<hsize_t>& dims) {
  if (!exists(file, name))
    fail("'", path, "' is not a complete reel shard: dataset '", name, "' is missing; re-create the shard");
  Id dset(check_read(H5Dopen2(file, name.c_str(), H5P_DEFAULT), path, cat("opening dataset '", name, "'")));
  Id type(check_read(H5Dget_type(dset.get()), path, cat("reading the type of '", name, "'")));
  if (H5Tget_class(type.get()) != cls)
    fail("shard '", path, "': dataset '", name, "' has the wrong type class (", int(H5Tget_class(type.get())),
         ", expected ", int(cls), "); see the format in data/shards.h");
  Id space(check_read(H5Dget_space(dset.get()), path, cat("reading the shape of '", name, "'")));
  int rank = check_read(H5Sget_simple_extent_ndims(space.get()), path, cat("reading the shape of '", name, "'"));
  std::vector<hsize_t> actual(rank);
  H5Sget_simple_extent_dims(space.get(), actual.data(), nullptr);
  if (actual != dims)
    fail("shard '", path, "': dataset '", name, "' has shape ", shape_text(actual), ", expected ",
         shape_text(dims), " for ", dims[0], " samples of its bucket");
  return dset;
}

std::vector<std::string> read_strings(hid_t file, const std::string& path, const std::string& name, hsize_t n) {
  Id dset = open_dataset(file, path, name, H5T_STRING, {n});
  Id type(check_read(H5Dget_type(dset.get()), path, cat("reading the type of '", name, "'")));
  if (H5Tis_variable_str(type.get()) <= 0)
    fail("shard '", path, "': dataset '", name,
         "' holds fixed-length strings; the format stores variable-length UTF-8");
  std::vector<std::string> strings(n);
  if (n == 0) return strings;
  Id mem(utf8_string_type(path));
  std::vector<char*> raw(n, nullptr);
  check_read(H5Dread(dset.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()), path,
             cat("reading dataset '", name, "'"));
  for (hsize_t i = 0; i < n; ++i) strings[i] = raw[i] ? raw[i] : "";
  Id space(check_read(H5Dget_space(dset.get()), path, "reading a dataspace"));
  H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, raw.data());
  return strings;
}

}  // namespace detail
}  // namespace reel::data
