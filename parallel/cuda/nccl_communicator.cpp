// The NCCL communicator backend (see nccl_communicator.h).
#include "parallel/cuda/nccl_communicator.h"

#include <chrono>
#include <thread>

#include "common/error.h"

namespace reel::parallel {
namespace {

constexpr uint64_t kNcclIdSalt = 0x4e43434c00000000ull;  // "NCCL": its ops counted apart from MPI's

ncclDataType_t nccl_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kHalf: return ncclFloat16;
    case torch::kByte:
    case torch::kBool: return ncclUint8;
    case torch::kChar: return ncclInt8;
    case torch::kInt: return ncclInt32;
    case torch::kLong: return ncclInt64;
    default: break;
  }
  REEL_CHECK(false, "the NCCL communicator does not carry dtype ", t, " (NCCL has no such type)");
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op, torch::ScalarType t) {
  if (t == torch::kBool) return op == ReduceOp::kMin ? ncclMin : ncclMax;  // any / all
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAvg: return ncclAvg;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

class NcclWork final : public Work {
 public:
  NcclWork(cuda::NcclComm& comm, cudaEvent_t done, cudaStream_t compute, std::vector<torch::Tensor> keep)
      : comm_(comm), done_(done), compute_(compute), keep_(std::move(keep)) {}
  ~NcclWork() override {
    // Without wait() nothing orders the caller after the operation: hold the buffers until it ends.
    if (!ordered_) CUDA_CHECK(cudaEventSynchronize(done_));
    cudaEventDestroy(done_);
  }
  void wait() override {
    CUDA_CHECK(cudaStreamWaitEvent(compute_, done_, 0));
    ordered_ = true;
  }
  bool completed() override { return comm_.query(done_); }

 private:
  cuda::NcclComm& comm_;
  cudaEvent_t done_;
  cudaStream_t compute_;
  std::vector<torch::Tensor> keep_;
  bool ordered_ = false;
};

}  // namespace

NcclCommunicator::NcclCommunicator(std::unique_ptr<MpiCommunicator> group, Watchdog& watchdog)
    : Communicator(group->name(), group->rank(), group->world_ranks()),
      group_(std::move(group)), watchdog_(watchdog), id_(group_->id() ^ kNcclIdSalt) {
  watchdog_.add_group(id_, name() + "/nccl");
  nccl_ = std::make_unique<cuda::NcclComm>(group_->comm());
}

NcclCommunicator::~NcclCommunicator() = default;

void NcclCommunicator::check_cuda_tensor(const char* op, const torch::Tensor& t) const {
  check_tensor(op, "tensor", t);
  REEL_CHECK(t.is_cuda(), op, " on group '", name(), "' (rank ", rank(), "): the NCCL communicator takes CUDA ",
             "tensors, got one on ", t.device(), "; use the MPI communicator for CPU tensors");
}

WorkHandle NcclCommunicator::finish(cudaEvent_t done, std::vector<torch::Tensor> keep) {
  ++issued_;
  watchdog_.enter(id_);
  return std::make_shared<NcclWork>(*nccl_, done, compute_, std::move(keep));
}

WorkHandle NcclCommunicator::all_reduce_async(const torch::Tensor& tensor, ReduceOp op) {
  check_cuda_tensor("all_reduce", tensor);
  REEL_CHECK(op != ReduceOp::kAvg || at::isFloatingType(tensor.scalar_type()), "all_reduce(avg) on group '", name(),
             "' needs a floating-point tensor, got ", tensor.scalar_type());
  auto t = tensor.scalar_type();
  return finish(nccl_->all_reduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_type(t), nccl_op(op, t),
                                  compute_),
                {tensor});
}

WorkHandle NcclCommunicator::all_gather_async(const torch::Tensor& out, const torch::Tensor& in) {
  check_cuda_tensor("all_gather", in);
  check_cuda_tensor("all_gather", out);
  check_numel("all_gather", "out", out, in.numel() * size());
  REEL_CHECK(out.scalar_type() == in.scalar_type(), "all_gather on group '", name(), "': out is ", out.scalar_type(),
             ", in is ", in.scalar_type());
  return finish(nccl_->all_gather(in.data_ptr(), out.data_ptr(), in.numel(), nccl_type(in.scalar_type()), compute_),
                {out, in});
}

WorkHandle NcclCommunicator::reduce_scatter_async(const torch::Tensor& out, const torch::Tensor& in, ReduceOp op) {
  check_cuda_tensor("reduce_scatter", in);
  check_cuda_tensor("reduce_scatter", out);
  check_numel("reduce_scatter", "in", in, out.numel() * size());
  auto t = in.scalar_type();
  REEL_CHECK(out.scalar_type() == t, "reduce_scatter on group '", name(), "': out is ", out.scalar_type(), ", in is ", t);
  REEL_CHECK(op != ReduceOp::kAvg || at::isFloatingType(t), "reduce_scatter(avg) on group '", name(),
             "' needs a floating-point tensor, got ", t);
  return finish(nccl_->reduce_scatter(in.data_ptr(), out.data_ptr(), out.numel(), nccl_type(t), nccl_op(op, t), compute_),
                {out, in});
}

WorkHandle NcclCommunicator::all_to_all_async(const torch::Tensor& out, const torch::Tensor& in) {
  check_cuda_tensor("all_to_all", in);
  check_cuda_tensor("all_to_all", out);
  check_numel("all_to_all", "out", out, in.numel());
  REEL_CHECK(in.numel() % size() == 0, "all_to_all on group '", name(), "' (rank ", rank(), "): ", in.numel(),
             " elements do not split into ", size(), " equal chunks");
  return finish(nccl_->all_to_all(in.data_ptr(), out.data_ptr(), in.numel() / size(), nccl_type(in.scalar_type()),
                                  compute_),
                {out, in});
}

WorkHandle NcclCommunicator::broadcast_async(const torch::Tensor& tensor, int root) {
  check_cuda_tensor("broadcast", tensor);
  check_peer("broadcast", root);
  return finish(nccl_->broadcast(tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()), root, compute_),
                {tensor});
}

// NCCL matches point-to-point transfers by order between a pair of ranks, not by tag.
WorkHandle NcclCommunicator::send_async(const torch::Tensor& tensor, int dst, int /*tag*/) {
  check_cuda_tensor("send", tensor);
  check_peer("send", dst);
  return finish(nccl_->send(tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()), dst, compute_),
                {tensor});
}

WorkHandle NcclCommunicator::recv_async(const torch::Tensor& tensor, int src, int /*tag*/) {
  check_cuda_tensor("recv", tensor);
  check_peer("recv", src);
  return finish(nccl_->recv(tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()), src, compute_),
                {tensor});
}

WorkHandle NcclCommunicator::barrier_async() {
  if (!barrier_word_.defined()) barrier_word_ = torch::zeros({1}, torch::TensorOptions(torch::kInt).device(torch::kCUDA));
  return all_reduce_async(barrier_word_, ReduceOp::kSum);
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key, const std::string& new_name) {
  return std::make_unique<NcclCommunicator>(group_->split_mpi(color, key, new_name), watchdog_);
}

void NcclCommunicator::synchronize() {
  watchdog_.begin_wait(id_, issued_, cat("NCCL operations up to #", issued_, " on group '", name(), "' (rank ", rank(),
                                         " of ", size(), ")"));
  for (int64_t polls = 0; cudaStreamQuery(nccl_->stream()) == cudaErrorNotReady; ++polls) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    if (polls % 2000 == 0) {
      nccl_->check_async_error();
      watchdog_.check_local_deadline();
    }
  }
  watchdog_.end_wait();
}

}  // namespace reel::parallel
