// HDF5 plumbing shared by the checkpoint reader (checkpoint.cpp) and writer
// (checkpoint_write.cpp). Private to trainer/.
#pragma once

#include <hdf5.h>
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace reel::trainer::detail {

// Owns one HDF5 identifier.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Id(H5Id&& other) noexcept : id_(std::exchange(other.id_, -1)), closer_(other.closer_) {}
  H5Id& operator=(H5Id&& other) noexcept {
    if (this != &other) {
      close();
      id_ = std::exchange(other.id_, -1);
      closer_ = other.closer_;
    }
    return *this;
  }
  ~H5Id() { close(); }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  herr_t close() {
    herr_t rc = id_ >= 0 ? closer_(id_) : 0;
    id_ = -1;
    return rc;
  }

 private:
  hid_t id_;
  Closer closer_;
};

// Silences HDF5's printing of its error stack while alive; errors become UserErrors instead.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// " (HDF5: <innermost message of the current error stack>)", or "" when the stack is empty.
std::string hdf5_detail();

// A file-access property list: no file locking; with strict_close, closing the file fails while an
// object of it is still open.
H5Id access_plist(bool strict_close);

H5Id scalar_space();

// How a torch dtype is stored.
struct Storage {
  const char* name;  // the `dtype` attribute
  hid_t file_type;
  hid_t mem_type;
};
std::optional<Storage> storage_of(torch::ScalarType t);
std::optional<torch::ScalarType> dtype_named(const std::string& name);
std::string stored_dtype_names();  // "float32 float64 ..."
std::string hex(uint64_t v);       // "0x00000000deadbeef"

}  // namespace reel::trainer::detail
