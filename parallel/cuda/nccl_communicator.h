// The NCCL backend of the communicator, for CUDA tensors (built when the CUDA toolkit and NCCL are
// found). It runs on NcclComm (nccl_comm.h): its own stream, ordered by events. wait() orders the
// compute stream after the operation without blocking the host; synchronize() blocks the host
// and is watched by the watchdog. NCCL has no 16-bit integer type: int16 tensors are refused.
#pragma once

#include <memory>

#include "parallel/communicator.h"
#include "parallel/cuda/nccl_comm.h"
#include "parallel/mpi_communicator.h"

namespace reel::parallel {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `group`: the NCCL communicator of the same ranks on the current CUDA device.
  // `group` bootstraps NCCL and serves split(); `watchdog` must outlive this object.
  NcclCommunicator(std::unique_ptr<MpiCommunicator> group, Watchdog& watchdog);
  ~NcclCommunicator() override;

  // The stream the caller computes on (default: the legacy default stream). Operations start
  // after the work queued on it; wait() orders it after the operation.
  void set_compute_stream(cudaStream_t stream) { compute_ = stream; }
  // Blocks the host until every operation issued so far is complete; a stall past
  // parallel.timeout_s aborts the job through the watchdog.
  void synchronize();

  WorkHandle all_reduce_async(const torch::Tensor& tensor, ReduceOp op) override;
  WorkHandle all_gather_async(const torch::Tensor& out, const torch::Tensor& in) override;
  WorkHandle reduce_scatter_async(const torch::Tensor& out, const torch::Tensor& in, ReduceOp op) override;
  WorkHandle all_to_all_async(const torch::Tensor& out, const torch::Tensor& in) override;
  WorkHandle broadcast_async(const torch::Tensor& tensor, int root) override;
  WorkHandle send_async(const torch::Tensor& tensor, int dst, int tag) override;
  WorkHandle recv_async(const torch::Tensor& tensor, int src, int tag) override;
  WorkHandle barrier_async() override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

 private:
  WorkHandle finish(cudaEvent_t done, std::vector<torch::Tensor> keep);
  void check_cuda_tensor(const char* op, const torch::Tensor& t) const;

  std::unique_ptr<MpiCommunicator> group_;
  Watchdog& watchdog_;
  uint64_t id_;
  uint64_t issued_ = 0;  // operations issued so far (the watchdog's sequence numbers)
  std::unique_ptr<cuda::NcclComm> nccl_;
  cudaStream_t compute_ = nullptr;
  torch::Tensor barrier_word_;  // one int on the device, all-reduced by barrier_async()
};

}  // namespace reel::parallel
