// Writing checkpoint files: one process (save_checkpoint) or many ranks at once
// (save_checkpoint_sharded, parallel HDF5 over MPI-IO). Both go through one writer: a
// one-process checkpoint is a sharded one whose only rank holds every tensor whole.
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <tuple>
#include <utility>

#include "common/error.h"
#include "common/fs.h"
#include "common/runtime.h"
#include "common/test_hooks.h"
#include "trainer/checkpoint.h"
#include "trainer/checkpoint_sharded.h"
#include "trainer/internal/checkpoint_hdf5.h"
#include "trainer/internal/checkpoint_util.h"

namespace reel::trainer {
namespace fs = std::filesystem;
using namespace detail;  // NOLINT: the HDF5 and string helpers of trainer/internal

// ---------------------------------------------------------------------------------------------
// Shares: which elements of the whole tensor a rank's data holds.

TensorShare whole_share(const torch::Tensor& t, bool writes) {
  TensorShare s;
  s.shape = t.sizes().vec();
  s.dtype = t.scalar_type();
  s.local_shape = s.shape;
  if (writes) {
    s.end = t.numel();
    s.data = t.reshape({-1});
  }
  return s;
}

std::vector<ShareRun> share_runs(const std::string& name, const TensorShare& s) {
  const int64_t ndim = static_cast<int64_t>(s.shape.size());
  auto bad = [&](const std::string& what) {
    fail("checkpoint tensor '", name, "' ", shape_str(s.shape), ": this rank's share is inconsistent: ", what);
  };
  if (static_cast<int64_t>(s.local_shape.size()) != ndim) {
    bad(cat("local shape ", shape_str(s.local_shape), " has another number of dimensions"));
  }
  if (!s.index_map.empty() && static_cast<int64_t>(s.index_map.size()) != ndim) {
    bad(cat("index map for ", s.index_map.size(), " dimensions"));
  }
  int64_t local_numel = 1;
  for (int64_t d = 0; d < ndim; ++d) {
    if (s.local_shape[d] < 0 || s.local_shape[d] > s.shape[d]) bad(cat("local shape ", shape_str(s.local_shape)));
    local_numel *= s.local_shape[d];
    if (s.index_map.empty()) {
      if (s.local_shape[d] != s.shape[d]) bad(cat("local shape ", shape_str(s.local_shape), " without an index map"));
      continue;
    }
    int64_t next = 0, last_whole = 0;
    for (const IndexSegment& g : s.index_map[d]) {
      if (g.local != next || g.length <= 0 || g.whole < last_whole || g.whole + g.length > s.shape[d]) {
        bad(cat("dimension ", d, ": segment {local ", g.local, ", whole ", g.whole, ", length ", g.length,
                "} is out of order or out of bounds"));
      }
      next = g.local + g.length;
      last_whole = g.whole + g.length;
    }
    if (next != s.local_shape[d]) bad(cat("dimension ", d, ": segments cover ", next, " of ", s.local_shape[d]));
  }
  if (s.begin < 0 || s.end < s.begin || s.end > local_numel) {
    bad(cat("elements [", s.begin, ", ", s.end, ") of a local tensor of ", local_numel));
  }
  std::vector<int64_t> whole_stride(ndim, 1);
  for (int64_t d = ndim - 2; d >= 0; --d) whole_stride[d] = whole_stride[d + 1] * s.shape[d + 1];
  // Where local index i of dimension d lands, and how many indices from it stay contiguous.
  auto map = [&](int64_t d, int64_t i, int64_t* contiguous) {
    if (s.index_map.empty()) {
      *contiguous = s.local_shape[d] - i;
      return i;
    }
    for (const IndexSegment& g : s.index_map[d]) {
      if (i < g.local + g.length) {
        *contiguous = g.local + g.length - i;
        return g.whole + (i - g.local);
      }
    }
    return int64_t{-1};  // not reached: the segments cover the dimension
  };

  std::vector<ShareRun> runs;
  std::vector<int64_t> idx(ndim);
  for (int64_t pos = s.begin; pos < s.end;) {
    int64_t rest = pos, whole = 0, length = s.end - pos;
    for (int64_t d = ndim - 1; d >= 0; --d) {
      idx[d] = rest % s.local_shape[d];
      rest /= s.local_shape[d];
    }
    for (int64_t d = 0; d < ndim; ++d) {
      int64_t contiguous = 0;
      whole += map(d, idx[d], &contiguous) * whole_stride[d];
      if (d == ndim - 1) length = std::min(length, contiguous);
    }
    if (ndim > 0 && s.index_map.empty()) length = s.end - pos;  // the whole tensor: one run
    if (!runs.empty() && runs.back().whole + runs.back().length == whole) {
      runs.back().length += length;
    } else {
      runs.push_back({whole, pos - s.begin, length});
    }
    pos += length;
  }
  return runs;
}

namespace {

// A block of the whole tensor, for an HDF5 hyperslab selection.
struct Box {
  std::vector<hsize_t> start, count;
};

// Appends the blocks making up the row-major elements [a, b) of a tensor of `shape` (from `dim`
// on, below `prefix`).
void range_boxes(const std::vector<int64_t>& shape, size_t dim, std::vector<hsize_t>& prefix, int64_t a, int64_t b,
                 std::vector<Box>& out) {
  if (a >= b) return;
  int64_t inner = 1;
  for (size_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  auto full_rows = [&](int64_t r0, int64_t r1) {
    Box box;
    box.start = prefix;
    box.count.assign(prefix.size(), 1);
    box.start.push_back(static_cast<hsize_t>(r0));
    box.count.push_back(static_cast<hsize_t>(r1 - r0));
    for (size_t d = dim + 1; d < shape.size(); ++d) {
      box.start.push_back(0);
      box.count.push_back(static_cast<hsize_t>(shape[d]));
    }
    out.push_back(std::move(box));
  };
  auto partial_row = [&](int64_t r, int64_t lo, int64_t hi) {
    prefix.push_back(static_cast<hsize_t>(r));
    range_boxes(shape, dim + 1, prefix, lo, hi, out);
    prefix.pop_back();
  };
  int64_t r0 = a / inner;
  const int64_t r_end = b / inner;  // rows before it are whole when they start at or after a
  if (r0 == (b - 1) / inner && (a % inner != 0 || b % inner != 0)) {
    partial_row(r0, a % inner, (b - 1) % inner + 1);
    return;
  }
  if (a % inner != 0) partial_row(r0++, a % inner, inner);
  if (r_end > r0) full_rows(r0, r_end);
  if (b % inner != 0) partial_row(r_end, 0, b % inner);
}

// The blocks of a share's runs, neighbours that differ along one dimension only merged.
std::vector<Box> share_boxes(const TensorShare& s, const std::vector<ShareRun>& runs) {
  std::vector<Box> boxes;
  std::vector<hsize_t> prefix;
  for (const ShareRun& r : runs) {
    std::vector<Box> mine;
    range_boxes(s.shape, 0, prefix, r.whole, r.whole + r.length, mine);
    for (Box& box : mine) {
      if (!boxes.empty()) {
        Box& last = boxes.back();
        size_t differ = 0, where = 0;
        for (size_t d = 0; d < box.start.size(); ++d) {
          if (last.start[d] != box.start[d] || last.count[d] != box.count[d]) {
            ++differ;
            where = d;
          }
        }
        if (differ == 1 && last.start[where] + last.count[where] == box.start[where]) {
          last.count[where] += box.count[where];
          continue;
        }
      }
      boxes.push_back(std::move(box));
    }
  }
  return boxes;
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


// The ranks writing one file (or one process, comm == MPI_COMM_NULL), and how they agree.
class Ranks {
 public:
  explicit Ranks(MPI_Comm comm) : comm_(comm) {
    if (comm_ != MPI_COMM_NULL) {
      MPI_Comm_rank(comm_, &rank_);
      MPI_Comm_size(comm_, &size_);
    }
  }
  MPI_Comm comm() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  // Runs `phase` here; when it threw on any rank, every rank throws the UserError of the lowest
  // rank that failed, naming it.
  template <typename Fn>
  void agree(Fn&& phase) {
    std::string error;
    try {
      phase();
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
    if (comm_ == MPI_COMM_NULL) {
      if (!error.empty()) throw UserError(error);
      return;
    }
    int mine = error.empty() ? INT_MAX : rank_, first = INT_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm_);
    if (first == INT_MAX) return;
    error = broadcast(error, first);
    throw UserError(size_ > 1 ? cat("rank ", first, ": ", error) : error);
  }

  std::string broadcast(std::string s, int root = 0) const {
    if (comm_ == MPI_COMM_NULL) return s;
    uint64_t n = s.size();
    MPI_Bcast(&n, 1, MPI_UINT64_T, root, comm_);
    s.resize(n);
    if (n > 0) MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, root, comm_);
    return s;
  }

  // Every rank's `mine`, in rank order.
  template <typename T>
  std::vector<std::vector<T>> all_gather(const std::vector<T>& mine) const {
    if (comm_ == MPI_COMM_NULL) return {mine};
    int bytes = static_cast<int>(mine.size() * sizeof(T));
    std::vector<int> counts(size_), displs(size_);
    MPI_Allgather(&bytes, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_);
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      displs[r] = total;
      total += counts[r];
    }
    std::vector<char> all(std::max(total, 1));
    MPI_Allgatherv(mine.data(), bytes, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, comm_);
    std::vector<std::vector<T>> out(size_);
    for (int r = 0; r < size_; ++r) {
      out[r].resize(counts[r] / sizeof(T));
      if (counts[r] > 0) std::memcpy(out[r].data(), all.data() + displs[r], counts[r]);
    }
    return out;
  }

  bool same_everywhere(uint64_t value) const {
    if (comm_ == MPI_COMM_NULL) return true;
    uint64_t lo = 0, hi = 0;
    MPI_Allreduce(&value, &lo, 1, MPI_UINT64_T, MPI_MIN, comm_);
    MPI_Allreduce(&value, &hi, 1, MPI_UINT64_T, MPI_MAX, comm_);
    return lo == hi;
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

// One tensor as this rank writes it.
struct Planned {
  std::string name;
  const TensorShare* share = nullptr;
  Storage storage{};
  torch::Tensor data;  // this rank's elements, contiguous on the CPU
  std::vector<ShareRun> runs;
  uint64_t checksum = 0;  // of the whole tensor
};

// What a rank tells the others about one of its runs.
struct RunRecord {
  int64_t tensor = 0;  // index in the plan
  uint64_t offset = 0, bytes = 0, crc = 0;
};

// ---------------------------------------------------------------------------------------------
// Writing one file, by one rank or collectively by all.

class Writer {
 public:
  Writer(const std::string& path, const std::string& tmp, const Ranks& ranks)
      : path_(path), tmp_(tmp), ranks_(ranks) {}

  void write(int64_t step, const std::vector<Planned>& plan, const std::map<std::string, std::string>& meta,
             const std::string& created) {
    H5Id fapl = access_plist(/*strict_close=*/true);
    H5Id dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
    check(dxpl.ok(), "making a transfer property list");
    if (ranks_.comm() != MPI_COMM_NULL) {
      check(H5Pset_fapl_mpio(fapl.get(), ranks_.comm(), MPI_INFO_NULL) >= 0 &&
                H5Pset_all_coll_metadata_ops(fapl.get(), true) >= 0 &&
                H5Pset_coll_metadata_write(fapl.get(), true) >= 0 &&
                H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE) >= 0,
            "setting up MPI-IO");
    }
    H5Id file(H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!file.ok()) {
      fail("cannot write checkpoint '", path_, "': cannot create '", tmp_, "'", hdf5_detail(),
           "; check that the directory exists and is writable", ranks_.size() > 1 ? " from every rank" : "");
    }
    string_attr(file.get(), "/", "format", kCheckpointFormat);
    int64_attr(file.get(), "/", "step", step);
    string_attr(file.get(), "/", "version", version());
    string_attr(file.get(), "/", "commit", git_commit());
    string_attr(file.get(), "/", "created", created);

    H5Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    check(lcpl.ok() && H5Pset_create_intermediate_group(lcpl.get(), 1) >= 0, "link property list");
    // Every byte is written, so no fill values; space allocated at creation, as MPI-IO needs.
    H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    check(dcpl.ok() && H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER) >= 0 &&
              H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY) >= 0,
          "dataset property list");
    size_t written = 0;
    for (const Planned& p : plan) {
      write_tensor(file.get(), lcpl.get(), dcpl.get(), dxpl.get(), p);
      if (++written == plan.size() / 2) test_kill_point("write", step);
    }
    for (const auto& [key, value] : meta) write_meta(file.get(), lcpl.get(), dcpl.get(), dxpl.get(), key, value);

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

  void write_tensor(hid_t file, hid_t lcpl, hid_t dcpl, hid_t dxpl, const Planned& p) {
    const TensorShare& s = *p.share;
    std::vector<hsize_t> dims(s.shape.begin(), s.shape.end());
    H5Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
               H5Sclose);
    check(space.ok(), "dataspace of tensor '" + p.name + "'");
    H5Id ds(H5Dcreate2(file, p.name.c_str(), p.storage.file_type, space.get(), lcpl, dcpl, H5P_DEFAULT), H5Dclose);
    check(ds.ok(), "creating dataset '" + p.name + "'");
    int64_t numel = 1;
    for (int64_t d : s.shape) numel *= d;
    if (numel > 0) {
      // This rank's elements (possibly none: every rank takes part in a collective write).
      const hsize_t n = static_cast<hsize_t>(s.end - s.begin);
      H5Id mem(H5Screate_simple(1, std::vector<hsize_t>{std::max<hsize_t>(n, 1)}.data(), nullptr), H5Sclose);
      check(mem.ok(), "memory dataspace of tensor '" + p.name + "'");
      if (n == 0) {
        check(H5Sselect_none(mem.get()) >= 0 && H5Sselect_none(space.get()) >= 0, "selecting '" + p.name + "'");
      } else if (!dims.empty()) {
        bool first = true;
        for (const Box& box : share_boxes(s, p.runs)) {
          check(H5Sselect_hyperslab(space.get(), first ? H5S_SELECT_SET : H5S_SELECT_OR, box.start.data(), nullptr,
                                    box.count.data(), nullptr) >= 0,
                "selecting this rank's part of '" + p.name + "'");
          first = false;
        }
        REEL_CHECK(H5Sget_select_npoints(space.get()) == static_cast<hssize_t>(n), "checkpoint tensor '", p.name,
                   "': the selection holds ", H5Sget_select_npoints(space.get()), " elements, the data ", n);
      }
      static const char none = 0;
      const void* buf = n > 0 ? p.data.data_ptr() : &none;
      check(H5Dwrite(ds.get(), p.storage.mem_type, dims.empty() && n > 0 ? H5S_ALL : mem.get(),
                     dims.empty() && n > 0 ? H5S_ALL : space.get(), dxpl, buf) >= 0,
            "writing tensor '" + p.name + "'");
    }
    string_attr(ds.get(), p.name, "dtype", p.storage.name);
    shape_attr(ds.get(), p.name, s.shape);
    uint64_attr(ds.get(), p.name, "checksum", p.checksum);
  }

  void write_meta(hid_t file, hid_t lcpl, hid_t dcpl, hid_t dxpl, const std::string& key, const std::string& value) {
    const std::string name = "meta/" + key;
    H5Id type = string_type(value.size());
    H5Id space = scalar_space();
    H5Id ds(H5Dcreate2(file, name.c_str(), type.get(), space.get(), lcpl, dcpl, H5P_DEFAULT), H5Dclose);
    check(ds.ok(), "creating dataset '" + name + "'");
    const char nul = '\0';
    const void* bytes = value.empty() ? &nul : value.data();
    if (ranks_.rank() == 0) {
      check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, dxpl, bytes) >= 0, "writing '" + name + "'");
    } else {
      H5Id none = scalar_space();
      check(H5Sselect_none(none.get()) >= 0 && H5Sselect_none(space.get()) >= 0 &&
                H5Dwrite(ds.get(), type.get(), none.get(), space.get(), dxpl, bytes) >= 0,
            "writing '" + name + "'");
    }
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
  const Ranks& ranks_;
};

// This rank's part of every tensor, checked, with the CRC-64 of each of its runs.
std::vector<Planned> plan_tensors(const std::string& path, const ShardedCheckpoint& ckpt,
                                  std::vector<RunRecord>& records) {
  std::vector<Planned> plan;
  for (const auto& [name, share] : ckpt.tensors) {
    if (name == "meta" || starts_with(name, "meta/")) {
      fail("cannot write checkpoint '", path, "': tensor name '", name,
           "' is under 'meta', which holds the meta strings; rename it");
    }
    std::optional<Storage> storage = storage_of(share.dtype);
    if (!storage) {
      fail("cannot write checkpoint '", path, "': tensor '", name, "' has dtype ", share.dtype,
           ", which checkpoints do not store (they store ", stored_dtype_names(), "); convert it first");
    }
    Planned p;
    p.name = name;
    p.share = &share;
    p.storage = *storage;
    p.runs = share_runs(name, share);
    const int64_t n = share.end - share.begin;
    if (n > 0) {
      if (!share.data.defined()) fail("cannot write checkpoint '", path, "': tensor '", name, "' is undefined");
      if (share.data.layout() != torch::kStrided) {
        fail("cannot write checkpoint '", path, "': tensor '", name, "' is not dense (layout ", share.data.layout(),
             "); convert it with to_dense() first");
      }
      if (share.data.scalar_type() != share.dtype || share.data.numel() != n) {
        fail("checkpoint tensor '", name, "': this rank's data is ", share.data.numel(), " ",
             share.data.scalar_type(), " elements for a share of ", n, " ", share.dtype);
      }
      p.data = share.data.detach().to(torch::kCPU).resolve_neg().contiguous();
    }
    const int64_t esize = static_cast<int64_t>(c10::elementSize(share.dtype));
    const auto* bytes = n > 0 ? static_cast<const unsigned char*>(p.data.data_ptr()) : nullptr;
    for (const ShareRun& r : p.runs) {
      records.push_back({static_cast<int64_t>(plan.size()), static_cast<uint64_t>(r.whole * esize),
                         static_cast<uint64_t>(r.length * esize), crc64(bytes + r.local * esize, r.length * esize)});
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

// Every tensor's checksum from every rank's runs, which must cover its bytes exactly once.
void combine_checksums(const std::string& path, std::vector<Planned>& plan,
                       const std::vector<std::vector<RunRecord>>& by_rank) {
  struct Piece {
    uint64_t offset, bytes, crc;
    int rank;
  };
  std::vector<std::vector<Piece>> pieces(plan.size());
  for (size_t r = 0; r < by_rank.size(); ++r) {
    for (const RunRecord& rec : by_rank[r]) {
      REEL_CHECK(rec.tensor >= 0 && rec.tensor < static_cast<int64_t>(plan.size()), "run of an unknown tensor");
      pieces[rec.tensor].push_back({rec.offset, rec.bytes, rec.crc, static_cast<int>(r)});
    }
  }
  for (size_t t = 0; t < plan.size(); ++t) {
    auto& list = pieces[t];
    std::sort(list.begin(), list.end(),
              [](const Piece& a, const Piece& b) { return std::tie(a.offset, a.rank) < std::tie(b.offset, b.rank); });
    uint64_t total = c10::elementSize(plan[t].share->dtype);
    for (int64_t d : plan[t].share->shape) total *= static_cast<uint64_t>(d);
    uint64_t covered = 0, crc = 0;
    int last_rank = -1;
    for (const Piece& p : list) {
      if (p.offset != covered) {
        fail("cannot write checkpoint '", path, "': tensor '", plan[t].name, "' ",
             p.offset > covered ? cat("has no rank writing bytes [", covered, ", ", p.offset, ")")
                                : cat("has bytes [", p.offset, ", ", std::min(covered, p.offset + p.bytes),
                                      ") written by both rank ", last_rank, " and rank ", p.rank),
             " of its ", total, "; the ranks' shares must cover it exactly once (a bug in the caller's layout)");
      }
      crc = crc64_combine(crc, p.crc, p.bytes);
      covered += p.bytes;
      last_rank = p.rank;
    }
    if (covered != total) {
      fail("cannot write checkpoint '", path, "': tensor '", plan[t].name, "' has no rank writing bytes [", covered,
           ", ", total, ") of its ", total, "; the ranks' shares must cover it exactly once");
    }
    plan[t].checksum = crc;
  }
}

// The tensors' names, shapes and dtypes, hashed: the same on every rank or nothing is written.
uint64_t layout_signature(const ShardedCheckpoint& ckpt) {
  std::string s = std::to_string(ckpt.step);
  for (const auto& [name, share] : ckpt.tensors) s += cat("|", name, shape_str(share.shape), int(share.dtype));
  return crc64(s.data(), s.size());
}

std::string encode_meta(const std::map<std::string, std::string>& meta) {
  std::string out;
  for (const auto& [k, v] : meta) out += cat(k.size(), ":", k, v.size(), ":", v);
  return out;
}

std::map<std::string, std::string> decode_meta(const std::string& s) {
  std::map<std::string, std::string> meta;
  size_t pos = 0;
  auto next = [&] {
    size_t colon = s.find(':', pos);
    size_t n = std::stoull(s.substr(pos, colon - pos));
    std::string v = s.substr(colon + 1, n);
    pos = colon + 1 + n;
    return v;
  };
  while (pos < s.size()) {
    std::string k = next();
    meta[k] = next();
  }
  return meta;
}

}  // namespace

void save_checkpoint_sharded(const std::string& path, const ShardedCheckpoint& ckpt, MPI_Comm comm) {
  QuietHdf5Errors quiet;
  Ranks ranks(comm);
  std::vector<RunRecord> mine;
  std::vector<Planned> plan;
  ranks.agree([&] {
    check_names(ckpt.tensors, path, "tensor");
    check_names(ckpt.meta, path, "meta");
    plan = plan_tensors(path, ckpt, mine);
  });
  if (!ranks.same_everywhere(layout_signature(ckpt))) {
    fail("cannot write checkpoint '", path, "': the ranks disagree on its step or its tensors' names, shapes or "
         "dtypes (a bug: every rank must describe the same tensors)");
  }
  ranks.agree([&] { combine_checksums(path, plan, ranks.all_gather(mine)); });

  // Rank 0's meta, time and temporary name, on every rank.
  const std::map<std::string, std::string> meta = decode_meta(ranks.broadcast(encode_meta(ckpt.meta)));
  const std::string created = ranks.broadcast(utc_now_iso8601());
  std::string tmp;
  ranks.agree([&] {
    if (ranks.rank() == 0) {
      const fs::path final_path(path);
      if (final_path.has_parent_path()) make_dirs(final_path.parent_path().string());
      tmp = path + ".tmp." + std::to_string(::getpid());
    }
  });
  tmp = ranks.broadcast(tmp);
  try {
    ranks.agree([&] { Writer(path, tmp, ranks).write(ckpt.step, plan, meta, created); });
    ranks.agree([&] {
      if (ranks.rank() == 0) publish_file(tmp, path);
    });
  } catch (...) {
    if (ranks.rank() == 0) {
      std::error_code ec;
      fs::remove(tmp, ec);
    }
    throw;
  }
}

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  ShardedCheckpoint whole;
  whole.step = ckpt.step;
  whole.meta = ckpt.meta;
  for (const auto& [name, t] : ckpt.tensors) {
    if (!t.defined()) fail("cannot write checkpoint '", path, "': tensor '", name, "' is undefined");
    whole.tensors[name] = whole_share(t, /*writes=*/true);
  }
  save_checkpoint_sharded(path, whole, MPI_COMM_NULL);
}

}  // namespace reel::trainer
