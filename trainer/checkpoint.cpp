// Checkpoint files (HDF5, format "reel-ckpt-1"): CRC-64, reading, inspecting (writing is in
// checkpoint_write.cpp).
#include "trainer/checkpoint.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/runtime.h"
#include "trainer/internal/checkpoint_hdf5.h"
#include "trainer/internal/checkpoint_util.h"

namespace reel::trainer {
namespace fs = std::filesystem;
using namespace detail;  // NOLINT: the HDF5 and string helpers of trainer/internal

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoints store little-endian bytes and checksum them in memory order");

// ---------------------------------------------------------------------------------------------
// CRC-64/XZ: slice-by-8 tables for the bytes, GF(2) matrices to combine CRCs of adjacent ranges.
namespace {

constexpr uint64_t kCrc64Poly = 0xC96C5795D7870F42ULL;  // ECMA-182, bit-reflected
constexpr size_t kCrcChunk = size_t{4} << 20;

struct Crc64Tables {
  uint64_t t[8][256];
};

const Crc64Tables& crc64_tables() {
  static const Crc64Tables tables = [] {
    Crc64Tables x{};
    for (uint64_t i = 0; i < 256; ++i) {
      uint64_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCrc64Poly : c >> 1;
      x.t[0][i] = c;
    }
    for (int i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) x.t[s][i] = (x.t[s - 1][i] >> 8) ^ x.t[0][x.t[s - 1][i] & 0xff];
    }
    return x;
  }();
  return tables;
}

uint64_t crc64_serial(const unsigned char* p, size_t n, uint64_t crc) {
  const auto& t = crc64_tables().t;
  crc = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    crc ^= v;
    crc = t[7][crc & 0xff] ^ t[6][(crc >> 8) & 0xff] ^ t[5][(crc >> 16) & 0xff] ^ t[4][(crc >> 24) & 0xff] ^
          t[3][(crc >> 32) & 0xff] ^ t[2][(crc >> 40) & 0xff] ^ t[1][(crc >> 48) & 0xff] ^ t[0][crc >> 56];
  }
  for (; n > 0; ++p, --n) crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return ~crc;
}

// A linear map on 64-bit CRC registers: column i is the image of bit i.
using Gf2Matrix = std::array<uint64_t, 64>;

uint64_t gf2_apply(const Gf2Matrix& m, uint64_t v) {
  uint64_t sum = 0;
  for (int i = 0; v != 0; ++i, v >>= 1) {
    if (v & 1) sum ^= m[i];
  }
  return sum;
}

Gf2Matrix gf2_compose(const Gf2Matrix& a, const Gf2Matrix& b) {  // a after b
  Gf2Matrix r;
  for (int i = 0; i < 64; ++i) r[i] = gf2_apply(a, b[i]);
  return r;
}

// The map that feeds `bytes` zero bytes through a CRC register.
Gf2Matrix crc64_zeros_operator(uint64_t bytes) {
  Gf2Matrix op;  // one zero bit
  op[0] = kCrc64Poly;
  for (int i = 1; i < 64; ++i) op[i] = uint64_t{1} << (i - 1);
  for (int i = 0; i < 3; ++i) op = gf2_compose(op, op);  // 8 zero bits
  Gf2Matrix result;
  for (int i = 0; i < 64; ++i) result[i] = uint64_t{1} << i;
  while (bytes != 0) {
    if (bytes & 1) result = gf2_compose(op, result);
    bytes >>= 1;
    if (bytes != 0) op = gf2_compose(op, op);
  }
  return result;
}

}  // namespace

uint64_t crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t size_b) {
  if (size_b == 0) return crc_a;
  // Runs of one length recur (the rows of a tensor-parallel slice, combined rank after rank), and
  // each operator costs ~log2(size) matrix products: keep the last few.
  thread_local std::map<uint64_t, Gf2Matrix> operators;
  auto it = operators.find(size_b);
  if (it == operators.end()) {
    if (operators.size() >= 64) operators.clear();
    it = operators.emplace(size_b, crc64_zeros_operator(size_b)).first;
  }
  return gf2_apply(it->second, crc_a) ^ crc_b;
}

uint64_t crc64(const void* data, size_t size, uint64_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size <= kCrcChunk || at::get_num_threads() == 1 || at::in_parallel_region()) {
    return crc64_serial(p, size, crc);
  }
  const int64_t chunks = static_cast<int64_t>((size + kCrcChunk - 1) / kCrcChunk);
  std::vector<uint64_t> crcs(chunks);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      size_t offset = static_cast<size_t>(c) * kCrcChunk;
      crcs[c] = crc64_serial(p + offset, std::min(kCrcChunk, size - offset), 0);
    }
  });
  const Gf2Matrix whole_chunk = crc64_zeros_operator(kCrcChunk);
  for (int64_t c = 0; c + 1 < chunks; ++c) crc = gf2_apply(whole_chunk, crc) ^ crcs[c];
  return crc64_combine(crc, crcs.back(), size - static_cast<size_t>(chunks - 1) * kCrcChunk);
}

// ---------------------------------------------------------------------------------------------
// HDF5 plumbing (declared in trainer/internal/checkpoint_hdf5.h).
namespace detail {

// " (HDF5: <innermost message of the current error stack>)", or "" when the stack is empty.
std::string hdf5_detail() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        auto* s = static_cast<std::string*>(out);
        if (s->empty() && e->desc != nullptr) *s = e->desc;
        return 0;
      },
      &detail);
  return detail.empty() ? "" : " (HDF5: " + detail + ")";
}

H5Id access_plist(bool strict_close) {
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  REEL_CHECK(fapl.ok(), "H5Pcreate(H5P_FILE_ACCESS) failed", hdf5_detail());
  // No flock(): files are written under a private temporary name and only read afterwards, and
  // locking fails on some parallel file systems.
  H5Pset_file_locking(fapl.get(), false, true);
  // Closing the file fails (instead of silently deferring) if an object is still open.
  if (strict_close) H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_SEMI);
  return fapl;
}

H5Id scalar_space() { return H5Id(H5Screate(H5S_SCALAR), H5Sclose); }


constexpr torch::ScalarType kStoredDtypes[] = {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16,
                                               torch::kLong,  torch::kInt,    torch::kShort, torch::kChar,
                                               torch::kByte,  torch::kBool};

std::optional<Storage> storage_of(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return Storage{"float32", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
    case torch::kDouble: return Storage{"float64", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
    case torch::kHalf: return Storage{"float16", H5T_STD_U16LE, H5T_NATIVE_UINT16};
    case torch::kBFloat16: return Storage{"bfloat16", H5T_STD_U16LE, H5T_NATIVE_UINT16};
    case torch::kLong: return Storage{"int64", H5T_STD_I64LE, H5T_NATIVE_INT64};
    case torch::kInt: return Storage{"int32", H5T_STD_I32LE, H5T_NATIVE_INT32};
    case torch::kShort: return Storage{"int16", H5T_STD_I16LE, H5T_NATIVE_INT16};
    case torch::kChar: return Storage{"int8", H5T_STD_I8LE, H5T_NATIVE_INT8};
    case torch::kByte: return Storage{"uint8", H5T_STD_U8LE, H5T_NATIVE_UINT8};
    case torch::kBool: return Storage{"bool", H5T_STD_U8LE, H5T_NATIVE_UINT8};
    default: return std::nullopt;
  }
}

std::optional<torch::ScalarType> dtype_named(const std::string& name) {
  for (torch::ScalarType t : kStoredDtypes) {
    if (name == storage_of(t)->name) return t;
  }
  return std::nullopt;
}

std::string stored_dtype_names() {
  std::string s;
  for (torch::ScalarType t : kStoredDtypes) s += (s.empty() ? "" : " ") + std::string(storage_of(t)->name);
  return s;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Reading.
namespace {

struct Header {
  int64_t step = 0;
  std::string version, commit, created;
};

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), fapl_(access_plist(false)), file_(-1, H5Fclose) {
    std::error_code ec;
    if (!fs::exists(path, ec)) fail("checkpoint '", path, "' does not exist");
    if (fs::is_directory(path, ec)) fail("checkpoint '", path, "' is a directory, not a checkpoint file");
    htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
    if (is_hdf5 < 0) fail("cannot read checkpoint '", path, "'", hdf5_detail(), "; check its permissions");
    if (is_hdf5 == 0) corrupt(cat("no HDF5 signature in its ", fs::file_size(path, ec), " bytes"));
    file_ = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl_.get()), H5Fclose);
    if (!file_.ok()) corrupt("HDF5 cannot open it");
    hsize_t size = 0;
    file_size_ = H5Fget_filesize(file_.get(), &size) >= 0 ? size : 0;
    check_format();
    list_datasets();
  }

  Header header() {
    Header h;
    h.step = int64_attr(file_.get(), "/", "step");
    h.version = string_attr(file_.get(), "/", "version");
    h.commit = string_attr(file_.get(), "/", "commit");
    h.created = string_attr(file_.get(), "/", "created");
    return h;
  }

  const std::vector<std::string>& tensor_names() const { return tensors_; }
  const std::vector<std::string>& meta_keys() const { return meta_keys_; }

  // Reads the dtype/shape attributes and checks them against the dataset. With `data`, also reads
  // the data into a new tensor and verifies its checksum.
  TensorInfo tensor_info(const std::string& name, torch::Tensor* data = nullptr) {
    H5Id ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) corrupt(cat("cannot open dataset '", name, "'"));
    TensorInfo info{name, shape_attr(ds.get(), name), string_attr(ds.get(), name, "dtype")};
    std::optional<torch::ScalarType> dtype = dtype_named(info.dtype);
    if (!dtype) {
      fail("checkpoint '", path_, "': tensor '", name, "' has dtype '", info.dtype, "', which this reel (",
           version(), ") does not know (it knows ", stored_dtype_names(), "); use a newer reel");
    }
    const Storage storage = *storage_of(*dtype);

    H5Id space(H5Dget_space(ds.get()), H5Sclose);
    int ndim = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
    if (ndim < 0) corrupt(cat("cannot read the extent of tensor '", name, "'"));
    std::vector<hsize_t> dims(ndim);
    if (ndim > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    std::vector<int64_t> extent(dims.begin(), dims.end());
    if (extent != info.shape) {
      corrupt(cat("tensor '", name, "' has extent ", shape_str(extent), " but shape attribute ",
                  shape_str(info.shape)));
    }
    H5Id type(H5Dget_type(ds.get()), H5Tclose);
    if (!type.ok() || !same_kind(type.get(), storage.file_type)) {
      corrupt(cat("tensor '", name, "' is stored with a type that does not hold dtype ", info.dtype));
    }
    uint64_t nbytes = elementSize(*dtype);
    for (int64_t d : info.shape) nbytes *= static_cast<uint64_t>(d);
    uint64_t stored = H5Dget_storage_size(ds.get());
    if (stored != nbytes || nbytes > file_size_) {
      corrupt(cat("tensor '", name, "' ", shape_str(info.shape), " ", info.dtype, " needs ", nbytes,
                  " bytes but the file holds ", stored, " for it"));
    }
    if (data == nullptr) return info;

    uint64_t checksum = uint64_attr(ds.get(), name, "checksum");
    torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(*dtype));
    if (nbytes > 0 && H5Dread(ds.get(), storage.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) {
      corrupt(cat("cannot read the data of tensor '", name, "'"));
    }
    uint64_t actual = crc64(t.data_ptr(), nbytes);
    if (actual != checksum) {
      fail("checkpoint '", path_, "': tensor '", name, "' fails its checksum (stored ", hex(checksum),
           ", computed ", hex(actual), "): the file is corrupt; use an earlier checkpoint");
    }
    *data = std::move(t);
    return info;
  }

  std::string meta(const std::string& key) {
    const std::string name = "meta/" + key;
    H5Id ds(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) corrupt(cat("cannot open dataset '", name, "'"));
    uint64_t length = uint64_attr(ds.get(), name, "length");
    uint64_t checksum = uint64_attr(ds.get(), name, "checksum");
    H5Id type(H5Dget_type(ds.get()), H5Tclose);
    H5Id space(H5Dget_space(ds.get()), H5Sclose);
    if (!type.ok() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) != 0 ||
        !space.ok() || H5Sget_simple_extent_npoints(space.get()) != 1) {
      corrupt(cat("'", name, "' is not a scalar fixed-length string"));
    }
    size_t size = H5Tget_size(type.get());
    if (length > size || size > file_size_) {
      corrupt(cat("'", name, "' has length ", length, " but a ", size, "-byte string type"));
    }
    std::string value(size, '\0');
    if (H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, value.data()) < 0) {
      corrupt(cat("cannot read '", name, "'"));
    }
    value.resize(length);
    uint64_t actual = crc64(value.data(), value.size());
    if (actual != checksum) {
      fail("checkpoint '", path_, "': meta '", key, "' fails its checksum (stored ", hex(checksum), ", computed ",
           hex(actual), "): the file is corrupt; use an earlier checkpoint");
    }
    return value;
  }

 private:
  [[noreturn]] void corrupt(const std::string& what) {
    fail("truncated or corrupt HDF5 file '", path_, "': ", what, hdf5_detail(),
         ". The write was probably interrupted; use an earlier checkpoint");
  }

  void check_format() {
    htri_t has = H5Aexists(file_.get(), "format");
    if (has < 0) corrupt("cannot read the root group's attributes");
    if (has == 0) {
      fail("'", path_, "' is an HDF5 file but not a Reel checkpoint: its root group has no 'format' attribute ",
           "(expected '", kCheckpointFormat, "')");
    }
    std::string format = string_attr(file_.get(), "/", "format");
    if (format != kCheckpointFormat) {
      std::string writer = H5Aexists(file_.get(), "version") > 0 ? string_attr(file_.get(), "/", "version") : "?";
      fail("checkpoint '", path_, "' has format '", format, "' (written by reel ", writer, ") but this reel (",
           version(), ", ", git_commit(), ") reads only '", kCheckpointFormat,
           "'; use the reel version that wrote it");
    }
  }

  void list_datasets() {
    std::vector<std::string> all;
    auto visit = [](hid_t group, const char* name, const H5L_info_t* info, void* out) noexcept -> herr_t {
      if (info->type != H5L_TYPE_HARD) return 0;
      hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
      if (obj < 0) return -1;
      H5I_type_t type = H5Iget_type(obj);
      H5Oclose(obj);
      try {
        if (type == H5I_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
      } catch (...) {
        return -1;
      }
      return 0;
    };
    if (H5Lvisit(file_.get(), H5_INDEX_NAME, H5_ITER_INC, visit, &all) < 0) corrupt("cannot list its datasets");
    for (std::string& name : all) {
      if (starts_with(name, "meta/")) {
        meta_keys_.push_back(name.substr(5));
      } else {
        tensors_.push_back(std::move(name));
      }
    }
    std::sort(tensors_.begin(), tensors_.end());
  }

  static bool same_kind(hid_t a, hid_t b) {
    H5T_class_t cls = H5Tget_class(a);
    if (cls != H5Tget_class(b) || H5Tget_size(a) != H5Tget_size(b)) return false;
    return cls != H5T_INTEGER || H5Tget_sign(a) == H5Tget_sign(b);
  }

  H5Id open_attr(hid_t obj, const std::string& owner, const char* attr) {
    H5Id a(H5Aopen(obj, attr, H5P_DEFAULT), H5Aclose);
    if (!a.ok()) corrupt(cat("cannot read attribute '", attr, "' of '", owner, "'"));
    return a;
  }

  std::string string_attr(hid_t obj, const std::string& owner, const char* attr) {
    H5Id a = open_attr(obj, owner, attr);
    H5Id type(H5Aget_type(a.get()), H5Tclose);
    if (!type.ok() || H5Tget_class(type.get()) != H5T_STRING) {
      corrupt(cat("attribute '", attr, "' of '", owner, "' is not a string"));
    }
    std::string value;
    if (H5Tis_variable_str(type.get()) > 0) {  // as h5py writes str attributes
      char* s = nullptr;
      H5Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
      if (H5Tset_size(mem.get(), H5T_VARIABLE) < 0 || H5Aread(a.get(), mem.get(), &s) < 0) {
        corrupt(cat("cannot read attribute '", attr, "' of '", owner, "'"));
      }
      value = s != nullptr ? s : "";
      H5free_memory(s);
    } else {
      value.assign(H5Tget_size(type.get()), '\0');
      if (H5Aread(a.get(), type.get(), value.data()) < 0) {
        corrupt(cat("cannot read attribute '", attr, "' of '", owner, "'"));
      }
      value.resize(value.find_last_not_of('\0') + 1);  // npos + 1 == 0
    }
    return value;
  }

  // The attribute's values converted to `mem_type`; `count` of them, or any number when -1.
  template <typename T>
  std::vector<T> number_attr(hid_t obj, const std::string& owner, const char* attr, hid_t mem_type, int64_t count) {
    H5Id a = open_attr(obj, owner, attr);
    H5Id type(H5Aget_type(a.get()), H5Tclose);
    H5Id space(H5Aget_space(a.get()), H5Sclose);
    hssize_t n = space.ok() ? H5Sget_simple_extent_npoints(space.get()) : -1;
    if (!type.ok() || H5Tget_class(type.get()) != H5T_INTEGER || n < 0 || (count >= 0 && n != count) ||
        static_cast<uint64_t>(n) > 64) {
      corrupt(cat("attribute '", attr, "' of '", owner, "' is not ", count == 1 ? "an integer" : "an integer array"));
    }
    std::vector<T> values(n);
    if (n > 0 && H5Aread(a.get(), mem_type, values.data()) < 0) {
      corrupt(cat("cannot read attribute '", attr, "' of '", owner, "'"));
    }
    return values;
  }
  int64_t int64_attr(hid_t obj, const std::string& owner, const char* attr) {
    return number_attr<int64_t>(obj, owner, attr, H5T_NATIVE_INT64, 1)[0];
  }
  uint64_t uint64_attr(hid_t obj, const std::string& owner, const char* attr) {
    return number_attr<uint64_t>(obj, owner, attr, H5T_NATIVE_UINT64, 1)[0];
  }
  std::vector<int64_t> shape_attr(hid_t obj, const std::string& owner) {
    std::vector<int64_t> shape = number_attr<int64_t>(obj, owner, "shape", H5T_NATIVE_INT64, -1);
    for (int64_t d : shape) {
      if (d < 0) corrupt(cat("tensor '", owner, "' has a negative size in its shape ", shape_str(shape)));
    }
    return shape;
  }

  std::string path_;
  H5Id fapl_;
  H5Id file_;
  uint64_t file_size_ = 0;
  std::vector<std::string> tensors_, meta_keys_;
};

}  // namespace

Checkpoint load_checkpoint(const std::string& path) {
  QuietHdf5Errors quiet;
  Reader reader(path);
  Checkpoint ckpt;
  ckpt.step = reader.header().step;
  ckpt.source = path;
  for (const std::string& name : reader.tensor_names()) reader.tensor_info(name, &ckpt.tensors[name]);
  for (const std::string& key : reader.meta_keys()) ckpt.meta[key] = reader.meta(key);
  return ckpt;
}

CheckpointInfo inspect_checkpoint(const std::string& path) {
  QuietHdf5Errors quiet;
  Reader reader(path);
  Header h = reader.header();
  CheckpointInfo info;
  info.step = h.step;
  info.version = h.version;
  info.commit = h.commit;
  info.created = h.created;
  for (const std::string& name : reader.tensor_names()) info.tensors.push_back(reader.tensor_info(name));
  for (const std::string& key : reader.meta_keys()) info.meta[key] = reader.meta(key);
  return info;
}

}  // namespace reel::trainer
