// The NCCL layer over raw device pointers and cudaStream_t, so that it compiles with nvcc alone
// (no CUDA LibTorch) on every machine with the CUDA toolkit. NcclCommunicator (nccl_communicator.h)
// puts the Communicator interface on top of it.
//
// Bootstrap: rank 0 of an MPI communicator makes the NCCL unique id and broadcasts it over MPI.
// Each operation runs on this object's own stream, ordered after the caller's stream by an event
// (no host synchronisation), and returns an event that completes with it: the caller orders its
// stream after that event (wait_on) before touching the buffers.
// bf16/fp16 reductions go through an fp32 copy (convert, reduce in fp32, convert back).
// Thread-safety: one thread per NcclComm.
#pragma once

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>
#include <string>

namespace reel::parallel::cuda {

// CUDA_CHECK / NCCL_CHECK: a failed call is fatal (REEL_CHECK), naming the call and the error.
void check_cuda(cudaError_t status, const char* call, const char* file, int line);
void check_nccl(ncclResult_t status, const char* call, const char* file, int line);
#define CUDA_CHECK(call) ::reel::parallel::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define NCCL_CHECK(call) ::reel::parallel::cuda::check_nccl((call), #call, __FILE__, __LINE__)

size_t nccl_type_size(ncclDataType_t type);

class NcclComm {
 public:
  // Collective over `group` (every rank of it): the NCCL communicator of the same ranks, on the
  // current CUDA device (call cudaSetDevice first).
  explicit NcclComm(MPI_Comm group);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  cudaStream_t stream() const { return stream_; }

  // Each returns an event recorded on this object's stream after the operation; the caller owns
  // it (cudaEventDestroy once done). `after` is the caller's stream: the operation starts once
  // the work already queued there is done. Counts are in elements of `type`.
  cudaEvent_t all_reduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                         cudaStream_t after);
  cudaEvent_t all_gather(const void* send, void* recv, size_t count_per_rank, ncclDataType_t type, cudaStream_t after);
  cudaEvent_t reduce_scatter(const void* send, void* recv, size_t count_per_rank, ncclDataType_t type,
                             ncclRedOp_t op, cudaStream_t after);
  // Equal chunks of count_per_rank elements, chunk j of `send` to rank j (grouped send/recv).
  cudaEvent_t all_to_all(const void* send, void* recv, size_t count_per_rank, ncclDataType_t type,
                         cudaStream_t after);
  cudaEvent_t broadcast(void* buffer, size_t count, ncclDataType_t type, int root, cudaStream_t after);
  cudaEvent_t send(const void* buffer, size_t count, ncclDataType_t type, int peer, cudaStream_t after);
  cudaEvent_t recv(void* buffer, size_t count, ncclDataType_t type, int peer, cudaStream_t after);

  // Non-blocking: true once `done` has completed; fatal when NCCL reports an asynchronous error.
  bool query(cudaEvent_t done);
  void check_async_error();  // fatal when NCCL reports an asynchronous error
  // Aborts the NCCL communicator (pending operations fail instead of hanging); for the watchdog.
  void abort();

 private:
  void begin(cudaStream_t after);  // orders stream_ after `after`
  cudaEvent_t end();               // records and returns the completion event
  // A reduction of a 16-bit float type through fp32 buffers on stream_.
  void reduce_via_fp32(const void* send, void* recv, size_t in_count, size_t out_count, ncclDataType_t type,
                       ncclRedOp_t op, bool scatter);

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int rank_ = 0, size_ = 1;
};

}  // namespace reel::parallel::cuda
