// The MPI communicator backend (see mpi_communicator.h).
#include "parallel/mpi_communicator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <functional>
#include <thread>

#include "common/error.h"
#include "parallel/internal/mpi_check.h"

namespace reel::parallel {
namespace {

constexpr uint64_t kWorldId = 1;

// bf16 and fp16 travel as 16-bit words; their reductions run on an fp32 copy.
bool reduces_in_fp32(torch::ScalarType t) { return t == torch::kBFloat16 || t == torch::kHalf; }

MPI_Datatype mpi_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return MPI_FLOAT;
    case torch::kDouble: return MPI_DOUBLE;
    case torch::kBFloat16:
    case torch::kHalf: return MPI_UINT16_T;
    case torch::kByte: return MPI_UINT8_T;
    case torch::kChar: return MPI_INT8_T;
    case torch::kShort: return MPI_INT16_T;
    case torch::kInt: return MPI_INT32_T;
    case torch::kLong: return MPI_INT64_T;
    case torch::kBool: return MPI_C_BOOL;
    default: break;
  }
  REEL_CHECK(false, "the MPI communicator does not carry dtype ", t);
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op, torch::ScalarType t) {
  if (t == torch::kBool) return op == ReduceOp::kMin ? MPI_LAND : MPI_LOR;  // sum and max of flags: any
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg: return MPI_SUM;
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
  }
  return MPI_SUM;
}

int mpi_count(int64_t n, const std::string& what) {
  REEL_CHECK(n <= INT_MAX, what, ": ", n, " elements exceed MPI's int count; split the tensor");
  return static_cast<int>(n);
}

// Reductions over more than kSegmentBytes run as several MPI operations of at most that size:
// Open MPI allocates a temporary buffer as large as the operation on every call, and from
// 32 MiB on (glibc's mmap threshold) that is fresh memory each time, whose page faults made a
// 256 MiB all_reduce 25x slower than 8 MiB ones per byte on the development VM
// (docs/PERFORMANCE.md). Smaller temporaries come from the heap and are reused.
constexpr int64_t kSegmentBytes = 8 << 20;
int64_t segment_elements(int64_t element_size) { return std::max<int64_t>(1, kSegmentBytes / element_size); }

// splitmix64 of a few words: child group ids that every member computes alike.
uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0xBF58476D1CE4E5B9ull) ^ (c * 0x94D049BB133111EBull);
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class MpiWork final : public Work {
 public:
  MpiWork(Watchdog& watchdog, uint64_t group, uint64_t seq, std::string what, std::vector<torch::Tensor> keep,
          std::function<void()> finish)
      : watchdog_(watchdog), group_(group), seq_(seq), what_(std::move(what)), keep_(std::move(keep)),
        finish_(std::move(finish)) {}
  ~MpiWork() override {
    if (!done_) wait();  // an operation is never abandoned while MPI still writes its buffers
  }

  void wait() override {
    if (done_) return;
    const auto start = std::chrono::steady_clock::now();
    watchdog_.begin_wait(group_, seq_, what_);
    // Spin briefly (most operations of a step finish within microseconds of each other), then
    // sleep between tests so that oversubscribed ranks leave the cores to the others.
    for (int64_t polls = 0; !test(); ++polls) {
      if (polls < 1000) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        if (polls % 2000 == 0) watchdog_.check_local_deadline();
      }
    }
    watchdog_.end_wait();
    detail::add_blocked_wait(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  bool completed() override { return test(); }

  std::vector<MPI_Request> requests;  // one per posted MPI operation (large reductions are segmented)

 private:
  bool test() {
    if (done_) return true;
    int flag = 0;
    MPI_CHECK(MPI_Testall(int(requests.size()), requests.data(), &flag, MPI_STATUSES_IGNORE), what_);
    if (!flag) return false;
    if (finish_) finish_();
    keep_.clear();
    done_ = true;
    return true;
  }

  Watchdog& watchdog_;
  uint64_t group_, seq_;
  std::string what_;
  std::vector<torch::Tensor> keep_;  // buffers MPI reads or writes until completion
  std::function<void()> finish_;     // runs once, on completion (copy back from fp32, divide for avg)
  bool done_ = false;
};

}  // namespace

struct MpiCommunicator::Launch {
  std::string what;                          // "all_reduce(sum) of 1024 Float"
  bool collective = true;                    // false for send/recv (not counted per group)
  std::vector<torch::Tensor> keep;
  std::vector<std::function<int(MPI_Request*)>> posts;  // start the MPI operations, in order
  std::function<void()> finish;
};

std::unique_ptr<MpiCommunicator> MpiCommunicator::world(Watchdog& watchdog) {
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(MPI_COMM_WORLD, false, "world", kWorldId, watchdog));
}

namespace {
std::vector<int> world_ranks_of(MPI_Comm comm) {
  MPI_Group group, world;
  int n = 0;
  MPI_CHECK(MPI_Comm_size(comm, &n), "MPI_Comm_size");
  MPI_CHECK(MPI_Comm_group(comm, &group), "MPI_Comm_group");
  MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world), "MPI_Comm_group");
  std::vector<int> local(n), global(n);
  for (int i = 0; i < n; ++i) local[i] = i;
  MPI_CHECK(MPI_Group_translate_ranks(group, n, local.data(), world, global.data()), "MPI_Group_translate_ranks");
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return global;
}
int comm_rank(MPI_Comm comm) {
  int r = 0;
  MPI_CHECK(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}
}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, bool owned, std::string name, uint64_t id, Watchdog& watchdog)
    : Communicator(std::move(name), comm_rank(comm), world_ranks_of(comm)),
      comm_(comm), owned_(owned), id_(id), watchdog_(watchdog) {
  watchdog_.add_group(id_, this->name());
}

MpiCommunicator::~MpiCommunicator() {
  if (owned_) MPI_Comm_free(&comm_);
}

void MpiCommunicator::check_cpu(const char* op, const torch::Tensor& t) const {
  check_tensor(op, "tensor", t);
  REEL_CHECK(t.device().is_cpu(), op, " on group '", name(), "' (rank ", rank(), "): the MPI communicator takes CPU ",
             "tensors, got one on ", t.device(), "; use the NCCL communicator for CUDA tensors");
}

WorkHandle MpiCommunicator::start(Launch launch) {
  uint64_t group = Watchdog::kPointToPoint, seq = 0;
  if (launch.collective) {
    group = id_;
    seq = watchdog_.enter(id_);
  }
  std::string what = cat(launch.what, " on group '", name(), "' (rank ", rank(), " of ", size(), ")");
  auto work = std::make_shared<MpiWork>(watchdog_, group, seq, what, std::move(launch.keep), std::move(launch.finish));
  work->requests.assign(launch.posts.size(), MPI_REQUEST_NULL);
  for (size_t i = 0; i < launch.posts.size(); ++i) MPI_CHECK(launch.posts[i](&work->requests[i]), what);
  return work;
}

WorkHandle MpiCommunicator::all_reduce_async(const torch::Tensor& tensor, ReduceOp op) {
  check_cpu("all_reduce", tensor);
  const auto dtype = tensor.scalar_type();
  REEL_CHECK(op != ReduceOp::kAvg || at::isFloatingType(dtype), "all_reduce(avg) on group '", name(),
             "' needs a floating-point tensor, got ", dtype, "; use sum and divide");
  std::string what = cat("all_reduce(", reduce_op_name(op), ") of ", tensor.numel(), " ", dtype);
  const int n = mpi_count(tensor.numel(), what);
  const bool staged = reduces_in_fp32(dtype);
  torch::Tensor buf = staged ? tensor.to(torch::kFloat) : tensor;
  const MPI_Datatype type = mpi_type(buf.scalar_type());
  const MPI_Op mop = mpi_op(op, dtype);
  MPI_Comm comm = comm_;
  const int size = this->size();
  Launch l;
  l.what = what;
  l.keep = {tensor, buf};
  const int64_t segment = segment_elements(buf.element_size());
  for (int64_t begin = 0; begin < n; begin += segment) {
    void* data = static_cast<char*>(buf.data_ptr()) + begin * buf.element_size();
    const int count = static_cast<int>(std::min<int64_t>(segment, n - begin));
    l.posts.push_back([=](MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, data, count, type, mop, comm, r); });
  }
  l.finish = [=]() mutable {
    if (op == ReduceOp::kAvg) buf.div_(size);
    if (staged) tensor.copy_(buf);
  };
  return start(std::move(l));
}

WorkHandle MpiCommunicator::all_gather_async(const torch::Tensor& out, const torch::Tensor& in) {
  check_cpu("all_gather", in);
  check_cpu("all_gather", out);
  check_numel("all_gather", "out", out, in.numel() * size());
  REEL_CHECK(out.scalar_type() == in.scalar_type(), "all_gather on group '", name(), "': out is ", out.scalar_type(),
             ", in is ", in.scalar_type());
  std::string what = cat("all_gather of ", in.numel(), " ", in.scalar_type(), " per rank");
  const int n = mpi_count(in.numel(), what);
  const MPI_Datatype type = mpi_type(in.scalar_type());
  MPI_Comm comm = comm_;
  Launch l;
  l.what = what;
  l.keep = {out, in};
  l.posts = {[=](MPI_Request* r) { return MPI_Iallgather(in.data_ptr(), n, type, out.data_ptr(), n, type, comm, r); }};
  return start(std::move(l));
}

WorkHandle MpiCommunicator::reduce_scatter_async(const torch::Tensor& out, const torch::Tensor& in, ReduceOp op) {
  check_cpu("reduce_scatter", in);
  check_cpu("reduce_scatter", out);
  check_numel("reduce_scatter", "in", in, out.numel() * size());
  const auto dtype = in.scalar_type();
  REEL_CHECK(out.scalar_type() == dtype, "reduce_scatter on group '", name(), "': out is ", out.scalar_type(),
             ", in is ", dtype);
  REEL_CHECK(op != ReduceOp::kAvg || at::isFloatingType(dtype), "reduce_scatter(avg) on group '", name(),
             "' needs a floating-point tensor, got ", dtype);
  std::string what = cat("reduce_scatter(", reduce_op_name(op), ") of ", in.numel(), " ", dtype);
  const int n = mpi_count(out.numel(), what);
  const bool staged = reduces_in_fp32(dtype);
  torch::Tensor src = staged ? in.to(torch::kFloat) : in;
  torch::Tensor dst = staged ? torch::empty({out.numel()}, torch::kFloat) : out;
  const MPI_Datatype type = mpi_type(src.scalar_type());
  const MPI_Op mop = mpi_op(op, dtype);
  MPI_Comm comm = comm_;
  const int size = this->size();
  Launch l;
  l.what = what;
  l.keep = {out, in, src, dst};
  // Segment p reduces columns [begin, begin + count) of every rank's block: those columns,
  // copied out contiguously (size x count), scatter into dst[begin, begin + count).
  const int64_t segment = std::max<int64_t>(1, segment_elements(src.element_size()) / size);
  for (int64_t begin = 0; begin < n; begin += segment) {
    const int count = static_cast<int>(std::min<int64_t>(segment, n - begin));
    torch::Tensor piece = count == n ? src : src.view({size, n}).narrow(1, begin, count).contiguous();
    void* recv = static_cast<char*>(dst.data_ptr()) + begin * dst.element_size();
    l.keep.push_back(piece);
    l.posts.push_back(
        [=](MPI_Request* r) { return MPI_Ireduce_scatter_block(piece.data_ptr(), recv, count, type, mop, comm, r); });
  }
  l.finish = [=]() mutable {
    if (op == ReduceOp::kAvg) dst.div_(size);
    if (staged) out.copy_(dst.view(out.sizes()));
  };
  return start(std::move(l));
}

WorkHandle MpiCommunicator::all_to_all_async(const torch::Tensor& out, const torch::Tensor& in) {
  check_cpu("all_to_all", in);
  check_cpu("all_to_all", out);
  check_numel("all_to_all", "out", out, in.numel());
  REEL_CHECK(in.numel() % size() == 0, "all_to_all on group '", name(), "' (rank ", rank(), "): ", in.numel(),
             " elements do not split into ", size(), " equal chunks");
  REEL_CHECK(out.scalar_type() == in.scalar_type(), "all_to_all on group '", name(), "': out is ", out.scalar_type(),
             ", in is ", in.scalar_type());
  std::string what = cat("all_to_all of ", in.numel(), " ", in.scalar_type());
  const int n = mpi_count(in.numel() / size(), what);
  const MPI_Datatype type = mpi_type(in.scalar_type());
  MPI_Comm comm = comm_;
  Launch l;
  l.what = what;
  l.keep = {out, in};
  l.posts = {[=](MPI_Request* r) { return MPI_Ialltoall(in.data_ptr(), n, type, out.data_ptr(), n, type, comm, r); }};
  return start(std::move(l));
}

WorkHandle MpiCommunicator::broadcast_async(const torch::Tensor& tensor, int root) {
  check_cpu("broadcast", tensor);
  check_peer("broadcast", root);
  std::string what = cat("broadcast from rank ", root, " of ", tensor.numel(), " ", tensor.scalar_type());
  const int n = mpi_count(tensor.numel(), what);
  const MPI_Datatype type = mpi_type(tensor.scalar_type());
  MPI_Comm comm = comm_;
  Launch l;
  l.what = what;
  l.keep = {tensor};
  l.posts = {[=](MPI_Request* r) { return MPI_Ibcast(tensor.data_ptr(), n, type, root, comm, r); }};
  return start(std::move(l));
}

WorkHandle MpiCommunicator::send_async(const torch::Tensor& tensor, int dst, int tag) {
  return point_to_point(/*sending=*/true, tensor, dst, tag);
}

WorkHandle MpiCommunicator::recv_async(const torch::Tensor& tensor, int src, int tag) {
  return point_to_point(/*sending=*/false, tensor, src, tag);
}

WorkHandle MpiCommunicator::point_to_point(bool sending, const torch::Tensor& tensor, int peer, int tag) {
  const char* op = sending ? "send" : "recv";
  check_cpu(op, tensor);
  check_peer(op, peer);
  std::string what = cat(op, " of ", tensor.numel(), " ", tensor.scalar_type(), sending ? " to" : " from", " rank ",
                         peer, " (world rank ", world_ranks()[peer], "), tag ", tag);
  const int n = mpi_count(tensor.numel(), what);
  const MPI_Datatype type = mpi_type(tensor.scalar_type());
  MPI_Comm comm = comm_;
  Launch l;
  l.what = what;
  l.collective = false;
  l.keep = {tensor};
  l.posts = {[=](MPI_Request* r) {
    return sending ? MPI_Isend(tensor.data_ptr(), n, type, peer, tag, comm, r)
                   : MPI_Irecv(tensor.data_ptr(), n, type, peer, tag, comm, r);
  }};
  return start(std::move(l));
}

WorkHandle MpiCommunicator::barrier_async() {
  MPI_Comm comm = comm_;
  Launch l;
  l.what = "barrier";
  l.posts = {[=](MPI_Request* r) { return MPI_Ibarrier(comm, r); }};
  return start(std::move(l));
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key, const std::string& new_name) {
  return split_mpi(color, key, new_name);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_mpi(int color, int key, const std::string& new_name) {
  REEL_CHECK(color >= 0, "split of group '", name(), "' (rank ", rank(), "): color ", color, " must be >= 0");
  const uint64_t seq = watchdog_.enter(id_);
  watchdog_.begin_wait(id_, seq, cat("split into '", new_name, "' on group '", name(), "' (rank ", rank(), ")"));
  MPI_Comm child;
  MPI_CHECK(MPI_Comm_split(comm_, color, key, &child), "MPI_Comm_split of group '", name(), "' into '", new_name, "'");
  watchdog_.end_wait();
  MPI_CHECK(MPI_Comm_set_errhandler(child, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  const uint64_t child_id = mix(id_, ++splits_, static_cast<uint64_t>(color));
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(child, true, new_name, child_id, watchdog_));
}

}  // namespace reel::parallel
