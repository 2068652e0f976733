// HDF5 helpers of the shard format: the process-wide lock, owned identifiers, error checks
// that throw UserErrors naming the shard, and typed attribute/dataset reads and writes. Every
// function here expects an Hdf5Lock to be held by the caller.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "data/shards.h"

namespace reel::data::detail {

constexpr const char* kShardFormat = "reel-shard-1";

// Holds hdf5_mutex() and stops HDF5 from printing its error stack while held: failures are
// reported by check() as UserErrors carrying the innermost HDF5 message instead.
class Hdf5Lock {
 public:
  Hdf5Lock() : lock_(hdf5_mutex()) {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Hdf5Lock() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

 private:
  std::unique_lock<std::recursive_mutex> lock_;
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The innermost message of HDF5's error stack, which is then cleared.
std::string hdf5_message();

// An owned HDF5 identifier (file, dataset, dataspace, type, property list); closed with the lock
// held by whoever destroys it.
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  Id(Id&& o) noexcept : id_(std::exchange(o.id_, -1)) {}
  Id& operator=(Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
    }
    return *this;
  }
  ~Id() { reset(); }
  hid_t get() const { return id_; }
  hid_t release() { return std::exchange(id_, -1); }
  void reset() {
    if (id_ >= 0) H5Idec_ref(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
};

// Returns `result` unless negative, then throws a UserError naming the shard and the step.
template <class T>
T check(T result, const std::string& path, const std::string& what) {
  if (result < 0) fail("shard '", path, "': ", what, " failed: ", hdf5_message());
  return result;
}

// check() for reading, with the hint that fits a bad file.
template <class T>
T check_read(T result, const std::string& path, const std::string& what) {
  if (result < 0)
    fail("shard '", path, "': ", what, " failed: ", hdf5_message(),
         "; the file is damaged or not a reel shard: re-create it");
  return result;
}

std::string shape_text(const std::vector<hsize_t>& dims);  // "(2, 8, 16)"
hid_t utf8_string_type(const std::string& path);           // a new variable-length UTF-8 string type

// Writing; `path` names the shard in errors.
void write_string_attr(hid_t loc, const std::string& path, const char* name, const std::string& value);
void write_int_attr(hid_t loc, const std::string& path, const char* name, int64_t value);  // stored int32
// Creates dataset `name` of shape `dims` and writes `data` (mem_type elements) into it.
void write_dataset(hid_t loc, const std::string& path, const char* name, hid_t file_type, hid_t mem_type,
                   const std::vector<hsize_t>& dims, const void* data);

// A new HDF5 file (1.8+ object format) at `tmp`, standing for shard `path` in errors.
Id create_file(const std::string& tmp, const std::string& path);

// A shard being written: an HDF5 file at "<path>.partial.<pid>" (its directory made first) that
// appears under `path` only through publish(); destroyed before that, it is closed and removed.
class PartialFile {
 public:
  explicit PartialFile(std::string path);  // UserError if the file cannot be created
  ~PartialFile();
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  hid_t get() const { return file_.get(); }
  // Closes the file (every object in it must be closed already), fsyncs it and renames it to
  // `path` (common/fs.h publish_file). UserError naming both paths on failure.
  void publish();

 private:
  std::string path_, tmp_;
  Id file_;
  bool published_ = false;
};

// Opens an existing HDF5 file read-only. UserError "<kind> '<path>' does not exist or is not a
// regular file", or "'<path>' is not a readable HDF5 file (<HDF5's reason>); <remedy>".
Id open_readonly(const std::string& path, const std::string& kind, const std::string& remedy);
// Dataset `name` of rows shaped `row` (N x row, N growing from 0), one row per chunk, Fletcher-32.
Id create_rows(hid_t file, const std::string& path, const char* name, hid_t file_type, const std::vector<hsize_t>& row);
// Writes `count` rows of mem_type from `data` at row `at` of a create_rows dataset, growing it.
void append_rows(hid_t dset, const std::string& path, const char* name, hid_t mem_type, hsize_t at, hsize_t count,
                 const void* data);
// Reads row `index` of a dataset shaped (N, row...) into `out`; UserError (a damaged file) on failure.
void read_row(hid_t dset, const std::string& path, const char* name, hid_t mem_type, hsize_t index, void* out);

// Reading; a missing or mistyped attribute/dataset is a UserError naming the shard.
bool exists(hid_t file, const std::string& name);  // "truth/color": every path component exists
std::string read_string_attr(hid_t file, const std::string& path, const char* name);
int64_t read_int_attr(hid_t file, const std::string& path, const char* name);
// Opens dataset `name`, checking that it exists, has type class `cls` and shape `dims`.
Id open_dataset(hid_t file, const std::string& path, const std::string& name, H5T_class_t cls,
                const std::vector<hsize_t>& dims);
std::vector<std::string> read_strings(hid_t file, const std::string& path, const std::string& name, hsize_t n);

// Reads a whole numeric dataset as mem_type into a vector of T (HDF5 converts the file type).
template <class T>
std::vector<T> read_numbers(hid_t file, const std::string& path, const std::string& name, H5T_class_t cls,
                            hid_t mem_type, const std::vector<hsize_t>& dims) {
  Id dset = open_dataset(file, path, name, cls, dims);
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  std::vector<T> values(n);
  if (n > 0)
    check_read(H5Dread(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), path,
               cat("reading dataset '", name, "'"));
  return values;
}

}  // namespace reel::data::detail
