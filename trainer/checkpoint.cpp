// Checkpoint files (HDF5, format "reel-ckpt-1"), module/AdamW state and run-directory bookkeeping.
#include "trainer/checkpoint.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/runtime.h"

namespace reel::trainer {
namespace fs = std::filesystem;

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
  return gf2_apply(crc64_zeros_operator(size_b), crc_a) ^ crc_b;
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
// HDF5 plumbing.
namespace {

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

// How a torch dtype is stored.
struct Storage {
  const char* name;  // the `dtype` attribute
  hid_t file_type;
  hid_t mem_type;
};

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

std::string shape_str(c10::IntArrayRef shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + ")";
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Why `name` cannot be an HDF5 path below a group, or "" when it can.
std::string name_problem(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.front() == '/' || name.back() == '/') return "starts or ends with '/'";
  for (size_t start = 0;;) {
    size_t end = name.find('/', start);
    std::string part = name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty()) return "has an empty component ('//')";
    if (part == "." || part == "..") return "has a '.' or '..' component";
    if (end == std::string::npos) return "";
    start = end + 1;
  }
}

// UserError for the first name in `names` that is invalid or is a group of another ("a" and "a/b").
template <typename Map>
void check_names(const Map& names, const std::string& path, const char* what) {
  for (const auto& [name, value] : names) {
    std::string problem = name_problem(name);
    if (!problem.empty()) {
      fail("cannot write checkpoint '", path, "': ", what, " name '", name, "' ", problem,
           "; names are '/'-separated paths such as 'model/blocks.0.attn.qkv.weight'");
    }
    for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 1)) {
      if (names.count(name.substr(0, pos)) != 0) {
        fail("cannot write checkpoint '", path, "': ", what, " names '", name.substr(0, pos), "' and '", name,
             "' conflict (the first would be both a dataset and the group holding the second); rename one");
      }
    }
  }
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Writing.

class Writer {
 public:
  Writer(const std::string& path, const std::string& tmp) : path_(path), tmp_(tmp) {}

  void write(const Checkpoint& ckpt) {
    H5Id fapl = access_plist(/*strict_close=*/true);
    H5Id file(H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!file.ok()) {
      fail("cannot write checkpoint '", path_, "': cannot create '", tmp_, "'", hdf5_detail(),
           "; check that the directory exists and is writable");
    }
    string_attr(file.get(), "/", "format", kCheckpointFormat);
    int64_attr(file.get(), "/", "step", ckpt.step);
    string_attr(file.get(), "/", "version", version());
    string_attr(file.get(), "/", "commit", git_commit());
    string_attr(file.get(), "/", "created", utc_now_iso8601());

    H5Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    check(lcpl.ok() && H5Pset_create_intermediate_group(lcpl.get(), 1) >= 0, "link property list");
    for (const auto& [name, tensor] : ckpt.tensors) write_tensor(file.get(), lcpl.get(), name, tensor);
    for (const auto& [key, value] : ckpt.meta) write_meta(file.get(), lcpl.get(), key, value);

    check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, "flushing");
    check(file.close() >= 0, "closing");
  }

 private:
  void check(bool ok, const std::string& what) {
    if (!ok) {
      fail("cannot write checkpoint '", path_, "': ", what, " failed", hdf5_detail(),
           "; check free disk space and quota");
    }
  }

  void write_tensor(hid_t file, hid_t lcpl, const std::string& name, const torch::Tensor& tensor) {
    if (!tensor.defined()) fail("cannot write checkpoint '", path_, "': tensor '", name, "' is undefined");
    std::optional<Storage> storage = storage_of(tensor.scalar_type());
    if (!storage) {
      fail("cannot write checkpoint '", path_, "': tensor '", name, "' has dtype ", tensor.scalar_type(),
           ", which checkpoints do not store (they store ", stored_dtype_names(), "); convert it first");
    }
    if (tensor.layout() != torch::kStrided) {
      fail("cannot write checkpoint '", path_, "': tensor '", name, "' is not dense (layout ", tensor.layout(),
           "); convert it with to_dense() first");
    }
    torch::Tensor t = tensor.detach().to(torch::kCPU).resolve_neg().contiguous();
    std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
    H5Id space(t.dim() == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(t.dim(), dims.data(), nullptr), H5Sclose);
    check(space.ok(), "dataspace of tensor '" + name + "'");
    H5Id ds(H5Dcreate2(file, name.c_str(), storage->file_type, space.get(), lcpl, H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose);
    check(ds.ok(), "creating dataset '" + name + "'");
    if (t.numel() > 0) {
      check(H5Dwrite(ds.get(), storage->mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0,
            "writing tensor '" + name + "'");
    }
    string_attr(ds.get(), name, "dtype", storage->name);
    shape_attr(ds.get(), name, t.sizes().vec());
    uint64_attr(ds.get(), name, "checksum", crc64(t.data_ptr(), t.nbytes()));
  }

  void write_meta(hid_t file, hid_t lcpl, const std::string& key, const std::string& value) {
    const std::string name = "meta/" + key;
    H5Id type = string_type(value.size());
    H5Id space = scalar_space();
    H5Id ds(H5Dcreate2(file, name.c_str(), type.get(), space.get(), lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    check(ds.ok(), "creating dataset '" + name + "'");
    const char nul = '\0';
    const void* bytes = value.empty() ? &nul : value.data();
    check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) >= 0, "writing '" + name + "'");
    uint64_attr(ds.get(), name, "length", value.size());
    uint64_attr(ds.get(), name, "checksum", crc64(value.data(), value.size()));
  }

  // Fixed-length UTF-8 string of max(1, bytes) bytes, NULLPAD.
  H5Id string_type(size_t bytes) {
    H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
    check(type.ok() && H5Tset_size(type.get(), std::max<size_t>(1, bytes)) >= 0 &&
              H5Tset_strpad(type.get(), H5T_STR_NULLPAD) >= 0 && H5Tset_cset(type.get(), H5T_CSET_UTF8) >= 0,
          "making a string type");
    return type;
  }

  void string_attr(hid_t obj, const std::string& owner, const char* attr, const std::string& value) {
    H5Id type = string_type(value.size());
    std::string padded = value.empty() ? std::string(1, '\0') : value;
    H5Id space = scalar_space();
    H5Id a(H5Acreate2(obj, attr, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    check(a.ok() && H5Awrite(a.get(), type.get(), padded.data()) >= 0,
          cat("writing attribute '", attr, "' of '", owner, "'"));
  }

  void number_attr(hid_t obj, const std::string& owner, const char* attr, hid_t file_type, hid_t mem_type,
                   const std::vector<hsize_t>& dims, const void* value) {
    H5Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims.data(), nullptr), H5Sclose);
    H5Id a(space.ok() ? H5Acreate2(obj, attr, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT) : -1, H5Aclose);
    bool empty = !dims.empty() && dims[0] == 0;
    check(a.ok() && (empty || H5Awrite(a.get(), mem_type, value) >= 0),
          cat("writing attribute '", attr, "' of '", owner, "'"));
  }
  void int64_attr(hid_t obj, const std::string& owner, const char* attr, int64_t v) {
    number_attr(obj, owner, attr, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &v);
  }
  void uint64_attr(hid_t obj, const std::string& owner, const char* attr, uint64_t v) {
    number_attr(obj, owner, attr, H5T_STD_U64LE, H5T_NATIVE_UINT64, {}, &v);
  }
  void shape_attr(hid_t obj, const std::string& owner, const std::vector<int64_t>& shape) {
    number_attr(obj, owner, "shape", H5T_STD_I64LE, H5T_NATIVE_INT64, {shape.size()}, shape.data());
  }

  std::string path_, tmp_;
};

// ---------------------------------------------------------------------------------------------
// Reading.

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

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  check_names(ckpt.tensors, path, "tensor");
  check_names(ckpt.meta, path, "meta");
  for (const auto& [name, tensor] : ckpt.tensors) {
    if (name == "meta" || starts_with(name, "meta/")) {
      fail("cannot write checkpoint '", path, "': tensor name '", name,
           "' is under 'meta', which holds the meta strings; rename it");
    }
  }
  QuietHdf5Errors quiet;
  write_atomically(path, [&](const std::string& tmp) { Writer(path, tmp).write(ckpt); });
}

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

// ---------------------------------------------------------------------------------------------
// Module and optimizer state.
namespace {

constexpr size_t kListedNames = 20;  // per kind of problem in an error message

std::string source_of(const Checkpoint& ckpt) {
  return ckpt.source.empty() ? std::string("checkpoint (in memory)") : "checkpoint '" + ckpt.source + "'";
}

// "  missing (3): a, b, c\n", at most kListedNames names; "" when `items` is empty.
std::string listing(const char* title, const std::vector<std::string>& items) {
  if (items.empty()) return "";
  std::string s = cat("\n  ", title, " (", items.size(), "): ");
  for (size_t i = 0; i < items.size() && i < kListedNames; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > kListedNames) s += cat(", ... and ", items.size() - kListedNames, " more");
  return s;
}

// The distinct first components of the checkpoint's tensor names, "model/, optim/, rng/".
std::string top_level_prefixes(const Checkpoint& ckpt) {
  std::set<std::string> prefixes;
  for (const auto& [name, t] : ckpt.tensors) prefixes.insert(name.substr(0, name.find('/') + 1));
  std::string s;
  for (const std::string& p : prefixes) s += (s.empty() ? "" : ", ") + p;
  return s.empty() ? "none" : s;
}

std::vector<std::pair<std::string, torch::Tensor>> module_tensors(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    if (p.value().defined()) out.emplace_back(p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    if (b.value().defined()) out.emplace_back(b.key(), b.value());
  }
  return out;
}

torch::Tensor cpu_copy(const torch::Tensor& t) {
  return t.detach().to(t.options().device(torch::kCPU), /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

void load_module_state(torch::nn::Module& module, const Checkpoint& ckpt, const std::string& prefix) {
  auto targets = module_tensors(module);
  std::set<std::string> expected;
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, target] : targets) {
    const std::string key = prefix + name;
    expected.insert(key);
    auto it = ckpt.tensors.find(key);
    if (it == ckpt.tensors.end()) {
      missing.push_back(key);
    } else if (!it->second.defined()) {
      mismatched.push_back(key + ": undefined in the checkpoint");
    } else if (it->second.sizes() != target.sizes()) {
      mismatched.push_back(cat(key, ": checkpoint ", shape_str(it->second.sizes()), " vs model ",
                               shape_str(target.sizes())));
    }
  }
  for (auto it = ckpt.tensors.lower_bound(prefix); it != ckpt.tensors.end() && starts_with(it->first, prefix); ++it) {
    if (expected.count(it->first) == 0) unexpected.push_back(it->first);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string hint = missing.size() == targets.size() && !targets.empty()
                           ? cat("\nnone of the module's tensors is in the checkpoint, whose tensors are under: ",
                                 top_level_prefixes(ckpt), "; check the prefix")
                           : std::string("\nthe checkpoint was written for a different model; check the recipe's "
                                         "model section against the one saved in the checkpoint (meta 'recipe')");
    fail(source_of(ckpt), " does not match the module under prefix '", prefix, "':",
         listing("missing", missing), listing("unexpected", unexpected), listing("shape mismatches", mismatched),
         hint);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(ckpt.tensors.at(prefix + name));
}

void add_module_state(const torch::nn::Module& module, const std::string& prefix, Checkpoint& ckpt) {
  for (const auto& [name, t] : module_tensors(module)) ckpt.tensors[prefix + name] = cpu_copy(t);
}

namespace {

constexpr const char* kOptimPrefix = "optim/";
constexpr const char* kAdamWFields[] = {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

std::string state_key(const torch::Tensor& param) { return c10::guts::to_string(param.unsafeGetTensorImpl()); }

// The options of the group holding each parameter the optimizer holds, by state key. Every one
// must be a parameter of `module`.
std::map<std::string, const torch::optim::AdamWOptions*> held_parameters(
    const torch::optim::AdamW& opt, const torch::OrderedDict<std::string, torch::Tensor>& params) {
  std::set<std::string> module_keys;
  for (const auto& p : params) module_keys.insert(state_key(p.value()));
  std::map<std::string, const torch::optim::AdamWOptions*> held;
  for (const auto& group : opt.param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (const torch::Tensor& p : group.params()) {
      REEL_CHECK(module_keys.count(state_key(p)) != 0, "the AdamW optimizer holds a ", shape_str(p.sizes()),
                 " tensor that is not a parameter of the module passed with it");
      held[state_key(p)] = &options;
    }
  }
  return held;
}

}  // namespace

void add_adamw_state(const torch::optim::AdamW& opt, const torch::nn::Module& module, Checkpoint& ckpt) {
  auto params = module.named_parameters(/*recurse=*/true);
  held_parameters(opt, params);
  for (const auto& p : params) {
    auto it = opt.state().find(state_key(p.value()));
    if (it == opt.state().end()) continue;
    const auto& state = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    const std::string base = kOptimPrefix + p.key() + "/";
    ckpt.tensors[base + "step"] = torch::scalar_tensor(state.step(), torch::kLong);
    ckpt.tensors[base + "exp_avg"] = cpu_copy(state.exp_avg());
    ckpt.tensors[base + "exp_avg_sq"] = cpu_copy(state.exp_avg_sq());
    if (state.max_exp_avg_sq().defined()) ckpt.tensors[base + "max_exp_avg_sq"] = cpu_copy(state.max_exp_avg_sq());
  }
}

void load_adamw_state(torch::optim::AdamW& opt, const torch::nn::Module& module, const Checkpoint& ckpt) {
  auto params = module.named_parameters(/*recurse=*/true);
  auto held = held_parameters(opt, params);

  // "optim/<param>/<field>" -> entries[param][field]
  std::map<std::string, std::map<std::string, torch::Tensor>> entries;
  std::vector<std::string> problems;
  const std::string prefix = kOptimPrefix;
  for (auto it = ckpt.tensors.lower_bound(prefix); it != ckpt.tensors.end() && starts_with(it->first, prefix); ++it) {
    size_t slash = it->first.rfind('/');
    std::string field = it->first.substr(slash + 1);
    bool known = std::find(std::begin(kAdamWFields), std::end(kAdamWFields), field) != std::end(kAdamWFields);
    if (!known || slash <= prefix.size()) {
      problems.push_back(it->first + ": not an AdamW state entry (step, exp_avg, exp_avg_sq, max_exp_avg_sq)");
      continue;
    }
    entries[it->first.substr(prefix.size(), slash - prefix.size())][field] = it->second;
  }

  for (const auto& [name, fields] : entries) {
    const std::string base = prefix + name + "/";
    const torch::Tensor* param = params.find(name);
    if (param == nullptr) {
      problems.push_back(base + "*: the module has no parameter '" + name + "'");
      continue;
    }
    auto options = held.find(state_key(*param));
    if (options == held.end()) {
      problems.push_back(base + "*: the optimizer does not hold parameter '" + name + "' (frozen?)");
      continue;
    }
    for (const char* required : {"step", "exp_avg", "exp_avg_sq"}) {
      if (fields.count(required) == 0) problems.push_back(base + required + ": missing");
    }
    if (options->second->amsgrad() && fields.count("max_exp_avg_sq") == 0) {
      problems.push_back(base + "max_exp_avg_sq: missing (the optimizer uses amsgrad; the checkpoint's did not)");
    }
    for (const auto& [field, t] : fields) {
      if (!t.defined()) {
        problems.push_back(base + field + ": undefined");
      } else if (field == "step") {
        if (t.scalar_type() != torch::kLong || t.numel() != 1) {
          problems.push_back(cat(base, "step: expected one int64, got ", t.scalar_type(), " ", shape_str(t.sizes())));
        }
      } else if (t.sizes() != param->sizes()) {
        problems.push_back(cat(base, field, ": checkpoint ", shape_str(t.sizes()), " vs model ",
                               shape_str(param->sizes())));
      }
    }
  }
  if (!problems.empty()) {
    fail(source_of(ckpt), ": its AdamW state does not fit the optimizer:", listing("problems", problems),
         "\nthe checkpoint was written for a different model or set of trainable parameters");
  }

  for (const auto& p : params) {
    const std::string key = state_key(p.value());
    auto found = entries.find(p.key());
    if (found == entries.end()) {
      opt.state().erase(key);
      continue;
    }
    const auto& fields = found->second;
    const torch::TensorOptions like = p.value().options();
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(fields.at("step").item<int64_t>());
    state->exp_avg(fields.at("exp_avg").to(like, /*non_blocking=*/false, /*copy=*/true));
    state->exp_avg_sq(fields.at("exp_avg_sq").to(like, /*non_blocking=*/false, /*copy=*/true));
    auto max = fields.find("max_exp_avg_sq");
    if (max != fields.end()) state->max_exp_avg_sq(max->second.to(like, /*non_blocking=*/false, /*copy=*/true));
    opt.state()[key] = std::move(state);
  }
}

// ---------------------------------------------------------------------------------------------
// Run directory.
namespace {

constexpr const char* kLatest = "latest";

std::string checkpoints_dir(const std::string& run_dir) { return (fs::path(run_dir) / "checkpoints").string(); }

std::string checkpoint_file_name(int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "step_%08lld.h5", static_cast<long long>(step));
  return buf;
}

// The step of "step_<digits>.h5", or nullopt for any other name (temporaries included).
std::optional<int64_t> step_of(const std::string& file_name) {
  const std::string head = "step_", tail = ".h5";
  if (file_name.size() <= head.size() + tail.size() || !starts_with(file_name, head) ||
      file_name.compare(file_name.size() - tail.size(), tail.size(), tail) != 0) {
    return std::nullopt;
  }
  std::string digits = file_name.substr(head.size(), file_name.size() - head.size() - tail.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(digits);
}

// step_*.h5 files of the run, newest first.
std::vector<std::string> checkpoint_files(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::optional<int64_t> step = step_of(name);
    if (step && it->is_regular_file(ec)) found.emplace_back(*step, it->path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a > b; });
  std::vector<std::string> paths;
  for (auto& f : found) paths.push_back(std::move(f.second));
  return paths;
}

// The file name `latest` holds, or "" with `problem` set when it is missing, unreadable or empty.
std::string read_latest(const std::string& dir, std::string* problem) {
  const std::string latest = (fs::path(dir) / kLatest).string();
  std::error_code ec;
  if (!fs::exists(latest, ec)) {
    *problem = cat("'", latest, "' does not exist");
    return "";
  }
  std::string name;
  try {
    name = read_file(latest);
  } catch (const UserError& e) {
    *problem = e.what();
    return "";
  }
  name.erase(name.find_last_not_of(" \t\r\n") + 1);
  name.erase(0, name.find_first_not_of(" \t\r\n"));
  if (name.empty() || name.find('/') != std::string::npos) {
    *problem = cat("'", latest, "' does not hold a checkpoint file name");
    return "";
  }
  return name;
}

// "" when inspect_checkpoint accepts `path`, else why not.
std::string inspect_problem(const std::string& path) {
  try {
    inspect_checkpoint(path);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  REEL_CHECK(step >= 0, "checkpoint step must be >= 0, got ", step);
  return (fs::path(checkpoints_dir(run_dir)) / checkpoint_file_name(step)).string();
}

void mark_latest(const std::string& run_dir, const std::string& checkpoint_file) {
  const fs::path given(checkpoint_file);
  const std::string name = given.filename().string();
  const fs::path dir(checkpoints_dir(run_dir));
  std::error_code ec;
  if (name.empty() || !fs::is_regular_file(dir / name, ec)) {
    fail("cannot mark '", checkpoint_file, "' as the latest checkpoint: '", (dir / name).string(),
         "' is not a file; save the checkpoint before marking it");
  }
  if (given.has_parent_path() && !fs::equivalent(given.parent_path(), dir, ec)) {
    fail("cannot mark '", checkpoint_file, "' as the latest checkpoint: it is not in '", dir.string(), "'");
  }
  write_file_atomic((dir / kLatest).string(), name + "\n");
}

std::string resolve_latest(const std::string& run_dir) {
  const std::string dir = checkpoints_dir(run_dir);
  const std::vector<std::string> files = checkpoint_files(dir);
  std::vector<std::string> skipped;  // for the final error

  std::string problem;
  std::string tried;
  std::string name = read_latest(dir, &problem);
  if (!name.empty()) {
    tried = (fs::path(dir) / name).string();
    std::error_code ec;
    if (!fs::exists(tried, ec)) {
      problem = cat("'latest' names ", name, ", which does not exist");
    } else {
      problem = inspect_problem(tried);
      if (problem.empty()) return tried;
      problem = cat("'latest' names ", name, ", which cannot be used: ", problem);
    }
  }
  if (files.empty() && name.empty()) {
    fail("no checkpoint to resume in run dir '", run_dir, "': ", problem, " and '", dir,
         "' holds no step_*.h5 file; start without --resume");
  }
  log_warn(problem, "; looking for the newest complete checkpoint in ", dir);
  skipped.push_back(problem);
  for (const std::string& path : files) {
    if (path == tried) continue;
    std::string why = inspect_problem(path);
    if (why.empty()) {
      log_warn("using ", path);
      return path;
    }
    log_warn("skipping ", path, ": ", why);
    skipped.push_back(cat(path, ": ", why));
  }
  std::string all;
  for (const std::string& s : skipped) all += "\n  " + s;
  fail("no complete checkpoint in run dir '", run_dir, "' (", files.size(), " step_*.h5 files in '", dir,
       "'):", all, "\nstart without --resume, or restore a checkpoint from a backup");
}

void prune_checkpoints(const std::string& run_dir, int keep_last) {
  if (keep_last <= 0) return;
  const std::string dir = checkpoints_dir(run_dir);
  std::string problem;
  const std::string latest_name = read_latest(dir, &problem);
  const std::string latest = latest_name.empty() ? "" : (fs::path(dir) / latest_name).string();
  int kept = 0;
  for (const std::string& path : checkpoint_files(dir)) {
    std::string why = inspect_problem(path);
    if (!why.empty()) {
      log_warn("not pruning ", path, " (and not counting it as one of the ", keep_last, " kept): ", why);
      continue;
    }
    if (kept < keep_last) {
      ++kept;
      continue;
    }
    if (path == latest) continue;
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) log_warn("cannot delete old checkpoint ", path, ": ", ec.message());
  }
}

}  // namespace reel::trainer
