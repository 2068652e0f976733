// The MPI backend of the communicator, for CPU tensors of every dtype the trainer uses (float32,
// float64, bfloat16, float16, int8/16/32/64, uint8, bool). Operations map to MPI's non-blocking
// collectives (MPI_Iallreduce, MPI_Iallgather, MPI_Ireduce_scatter_block, MPI_Ialltoall,
// MPI_Ibcast, MPI_Ibarrier, MPI_Isend/Irecv); bf16/fp16 reductions run on an fp32 copy.
// Waiting polls the request and reports to the watchdog (watchdog.h).
#pragma once

#include <mpi.h>

#include <memory>

#include "parallel/communicator.h"
#include "parallel/watchdog.h"

namespace reel::parallel {

class MpiCommunicator final : public Communicator {
 public:
  // The group of every rank ("world"). `watchdog` must outlive every communicator made from it.
  static std::unique_ptr<MpiCommunicator> world(Watchdog& watchdog);
  ~MpiCommunicator() override;

  WorkHandle all_reduce_async(const torch::Tensor& tensor, ReduceOp op) override;
  WorkHandle all_gather_async(const torch::Tensor& out, const torch::Tensor& in) override;
  WorkHandle reduce_scatter_async(const torch::Tensor& out, const torch::Tensor& in, ReduceOp op) override;
  WorkHandle all_to_all_async(const torch::Tensor& out, const torch::Tensor& in) override;
  WorkHandle broadcast_async(const torch::Tensor& tensor, int root) override;
  WorkHandle send_async(const torch::Tensor& tensor, int dst, int tag) override;
  WorkHandle recv_async(const torch::Tensor& tensor, int src, int tag) override;
  WorkHandle barrier_async() override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;
  // split() with the concrete type (the NCCL backend bootstraps its sub-groups over it).
  std::unique_ptr<MpiCommunicator> split_mpi(int color, int key, const std::string& name);

  MPI_Comm comm() const { return comm_; }  // borrowed; valid while this object lives
  uint64_t id() const { return id_; }      // the same on every member; names the group to the watchdog

 private:
  MpiCommunicator(MPI_Comm comm, bool owned, std::string name, uint64_t id, Watchdog& watchdog);

  struct Launch;  // what start() needs to run one operation
  WorkHandle start(Launch launch);
  WorkHandle point_to_point(bool sending, const torch::Tensor& tensor, int peer, int tag);
  void check_cpu(const char* op, const torch::Tensor& t) const;

  MPI_Comm comm_;
  bool owned_;  // MPI_Comm_free on destruction (not for MPI_COMM_WORLD)
  uint64_t id_;
  uint64_t splits_ = 0;  // split() calls so far: part of each child's id
  Watchdog& watchdog_;
};

}  // namespace reel::parallel
