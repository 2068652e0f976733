// The communicator interface: collectives and point-to-point transfers over one group of ranks.
// Two backends implement it: MPI for CPU tensors (mpi_communicator.h) and NCCL for CUDA tensors
// (nccl_communicator.h). Code above this layer (FSDP, tensor/context parallel) sees only this.
//
// Contract of every operation:
//  - Tensors are contiguous and on the backend's device; sizes are checked on the calling rank
//    and a mismatch is fatal (REEL_CHECK) with the rank, group, operation and sizes in the message.
//  - The *_async forms start the operation and return a Work handle; the tensors must not be read
//    or written until wait() returns (the handle keeps them alive). The blocking forms are
//    start + wait.
//  - Every rank of the group calls the same collectives in the same order.
//  - A wait that does not complete within the communicator's timeout is reported by the watchdog
//    (watchdog.h), which names the ranks that did not arrive and aborts the job.
//  - Reductions of bf16 and fp16 tensors accumulate in fp32 and round once at the end.
//
// Thread-safety: one thread issues the operations of a communicator; Work handles may be waited
// on from that thread only.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace reel::parallel {

enum class ReduceOp { kSum, kAvg, kMax, kMin };
const char* reduce_op_name(ReduceOp op);

// A started operation. wait() blocks until it is complete on this rank (for CUDA backends: until
// the caller's stream is ordered after it, without blocking the host).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  virtual bool completed() = 0;  // non-blocking test; true once wait() would return at once
};
using WorkHandle = std::shared_ptr<Work>;

// Seconds this process has spent blocked in Work::wait() on any communicator, every group and
// operation together: a step's exposed communication, what did not overlap with its compute.
// Host waits only: a CUDA backend's wait() orders the compute stream without blocking the host,
// so NCCL time is not in it.
double blocked_wait_seconds();
namespace detail {
void add_blocked_wait(double seconds);  // backends: after each wait()
}  // namespace detail

class Communicator {
 public:
  virtual ~Communicator() = default;

  int rank() const { return rank_; }                       // this rank's index in the group
  int size() const { return size_; }                       // ranks in the group
  const std::string& name() const { return name_; }        // "world", "tp", "fsdp", ...
  const std::vector<int>& world_ranks() const { return world_ranks_; }  // group rank -> world rank

  // `tensor` is reduced over the group in place.
  virtual WorkHandle all_reduce_async(const torch::Tensor& tensor, ReduceOp op) = 0;
  // out (size * n) <- every rank's in (n), in rank order; shapes may differ, element counts must not.
  virtual WorkHandle all_gather_async(const torch::Tensor& out, const torch::Tensor& in) = 0;
  // in (size * n) is reduced over the group; rank r receives chunk r (n elements) in out.
  virtual WorkHandle reduce_scatter_async(const torch::Tensor& out, const torch::Tensor& in, ReduceOp op) = 0;
  // in and out (size * n): chunk j of rank i's in arrives as chunk i of rank j's out.
  virtual WorkHandle all_to_all_async(const torch::Tensor& out, const torch::Tensor& in) = 0;
  // `tensor` on every rank <- root's tensor.
  virtual WorkHandle broadcast_async(const torch::Tensor& tensor, int root) = 0;
  virtual WorkHandle send_async(const torch::Tensor& tensor, int dst, int tag) = 0;
  virtual WorkHandle recv_async(const torch::Tensor& tensor, int src, int tag) = 0;
  virtual WorkHandle barrier_async() = 0;

  // Collective over this group: ranks with the same color form a new group, ordered by key then
  // by rank here. `name` labels the new group in messages.
  virtual std::unique_ptr<Communicator> split(int color, int key, const std::string& name) = 0;

  void all_reduce(const torch::Tensor& tensor, ReduceOp op = ReduceOp::kSum) { all_reduce_async(tensor, op)->wait(); }
  void all_gather(const torch::Tensor& out, const torch::Tensor& in) { all_gather_async(out, in)->wait(); }
  void reduce_scatter(const torch::Tensor& out, const torch::Tensor& in, ReduceOp op = ReduceOp::kSum) {
    reduce_scatter_async(out, in, op)->wait();
  }
  void all_to_all(const torch::Tensor& out, const torch::Tensor& in) { all_to_all_async(out, in)->wait(); }
  void broadcast(const torch::Tensor& tensor, int root) { broadcast_async(tensor, root)->wait(); }
  void send(const torch::Tensor& tensor, int dst, int tag = 0) { send_async(tensor, dst, tag)->wait(); }
  void recv(const torch::Tensor& tensor, int src, int tag = 0) { recv_async(tensor, src, tag)->wait(); }
  void barrier() { barrier_async()->wait(); }

 protected:
  Communicator(std::string name, int rank, std::vector<int> world_ranks)
      : name_(std::move(name)), rank_(rank), size_(static_cast<int>(world_ranks.size())),
        world_ranks_(std::move(world_ranks)) {}

  // Fatal unless the tensors are contiguous, defined and hold `expected` elements; names the
  // operation, the group, this rank and the sizes.
  void check_tensor(const char* op, const char* what, const torch::Tensor& t) const;
  void check_numel(const char* op, const char* what, const torch::Tensor& t, int64_t expected) const;
  void check_peer(const char* op, int peer) const;

 private:
  std::string name_;
  int rank_, size_;
  std::vector<int> world_ranks_;
};

}  // namespace reel::parallel
