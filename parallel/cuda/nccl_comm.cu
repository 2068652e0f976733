// The NCCL layer (see nccl_comm.h).
#include "parallel/cuda/nccl_comm.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdio>
#include <cstdlib>

namespace reel::parallel::cuda {
namespace {

[[noreturn]] void fatal(const char* what, const char* detail, const char* call, const char* file, int line) {
  int rank = -1;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "[reel] FATAL %s:%d rank %d: %s failed: %s (%s)\n", file, line, rank, call, detail, what);
  std::fflush(stderr);
  if (initialized) MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

template <typename T>
__global__ void to_f32(const T* in, float* out, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = float(in[i]);
}

template <typename T>
__global__ void from_f32(const float* in, T* out, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = T(in[i]);
}

unsigned blocks_for(size_t n) { return unsigned(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096); }

}  // namespace

void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) fatal("CUDA", cudaGetErrorString(status), call, file, line);
}

void check_nccl(ncclResult_t status, const char* call, const char* file, int line) {
  if (status != ncclSuccess) fatal("NCCL", ncclGetErrorString(status), call, file, line);
}

size_t nccl_type_size(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: case ncclUint8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}

NcclComm::NcclComm(MPI_Comm group) {
  MPI_Comm_rank(group, &rank_);
  MPI_Comm_size(group, &size_);
  ncclUniqueId id;
  if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  if (MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, group) != MPI_SUCCESS)
    fatal("MPI", "broadcast of the NCCL unique id", "MPI_Bcast", __FILE__, __LINE__);
  NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

NcclComm::~NcclComm() {
  if (stream_) cudaStreamSynchronize(stream_);
  if (comm_) ncclCommDestroy(comm_);
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclComm::begin(cudaStream_t after) {
  cudaEvent_t ready;
  CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(ready, after));
  CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
  CUDA_CHECK(cudaEventDestroy(ready));  // released once the recorded work completes
}

cudaEvent_t NcclComm::end() {
  cudaEvent_t done;
  CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(done, stream_));
  return done;
}

void NcclComm::reduce_via_fp32(const void* send, void* recv, size_t in_count, size_t out_count, ncclDataType_t type,
                               ncclRedOp_t op, bool scatter) {
  float *in32 = nullptr, *out32 = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&in32), in_count * sizeof(float), stream_));
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&out32), out_count * sizeof(float), stream_));
  if (type == ncclBfloat16) {
    to_f32<<<blocks_for(in_count), 256, 0, stream_>>>(static_cast<const __nv_bfloat16*>(send), in32, in_count);
  } else {
    to_f32<<<blocks_for(in_count), 256, 0, stream_>>>(static_cast<const __half*>(send), in32, in_count);
  }
  CUDA_CHECK(cudaGetLastError());
  if (scatter) {
    NCCL_CHECK(ncclReduceScatter(in32, out32, out_count, ncclFloat32, op, comm_, stream_));
  } else {
    NCCL_CHECK(ncclAllReduce(in32, out32, out_count, ncclFloat32, op, comm_, stream_));
  }
  if (type == ncclBfloat16) {
    from_f32<<<blocks_for(out_count), 256, 0, stream_>>>(out32, static_cast<__nv_bfloat16*>(recv), out_count);
  } else {
    from_f32<<<blocks_for(out_count), 256, 0, stream_>>>(out32, static_cast<__half*>(recv), out_count);
  }
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaFreeAsync(in32, stream_));
  CUDA_CHECK(cudaFreeAsync(out32, stream_));
}

cudaEvent_t NcclComm::all_reduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                                 cudaStream_t after) {
  begin(after);
  if (type == ncclBfloat16 || type == ncclFloat16) {
    reduce_via_fp32(send, recv, count, count, type, op, /*scatter=*/false);
  } else {
    NCCL_CHECK(ncclAllReduce(send, recv, count, type, op, comm_, stream_));
  }
  return end();
}

cudaEvent_t NcclComm::all_gather(const void* send, void* recv, size_t count_per_rank, ncclDataType_t type,
                                 cudaStream_t after) {
  begin(after);
  NCCL_CHECK(ncclAllGather(send, recv, count_per_rank, type, comm_, stream_));
  return end();
}

cudaEvent_t NcclComm::reduce_scatter(const void* send, void* recv, size_t count_per_rank, ncclDataType_t type,
                                     ncclRedOp_t op, cudaStream_t after) {
  begin(after);
  if (type == ncclBfloat16 || type == ncclFloat16) {
    reduce_via_fp32(send, recv, count_per_rank * size_, count_per_rank, type, op, /*scatter=*/true);
  } else {
    NCCL_CHECK(ncclReduceScatter(send, recv, count_per_rank, type, op, comm_, stream_));
  }
  return end();
}

cudaEvent_t NcclComm::all_to_all(const void* send, void* recv, size_t count_per_rank, ncclDataType_t type,
                                 cudaStream_t after) {
  begin(after);
  const size_t bytes = count_per_rank * nccl_type_size(type);
  NCCL_CHECK(ncclGroupStart());
  for (int peer = 0; peer < size_; ++peer) {
    NCCL_CHECK(ncclSend(static_cast<const char*>(send) + peer * bytes, count_per_rank, type, peer, comm_, stream_));
    NCCL_CHECK(ncclRecv(static_cast<char*>(recv) + peer * bytes, count_per_rank, type, peer, comm_, stream_));
  }
  NCCL_CHECK(ncclGroupEnd());
  return end();
}

cudaEvent_t NcclComm::broadcast(void* buffer, size_t count, ncclDataType_t type, int root, cudaStream_t after) {
  begin(after);
  NCCL_CHECK(ncclBroadcast(buffer, buffer, count, type, root, comm_, stream_));
  return end();
}

cudaEvent_t NcclComm::send(const void* buffer, size_t count, ncclDataType_t type, int peer, cudaStream_t after) {
  begin(after);
  NCCL_CHECK(ncclSend(buffer, count, type, peer, comm_, stream_));
  return end();
}

cudaEvent_t NcclComm::recv(void* buffer, size_t count, ncclDataType_t type, int peer, cudaStream_t after) {
  begin(after);
  NCCL_CHECK(ncclRecv(buffer, count, type, peer, comm_, stream_));
  return end();
}

void NcclComm::check_async_error() {
  ncclResult_t async_error = ncclSuccess;
  NCCL_CHECK(ncclCommGetAsyncError(comm_, &async_error));
  NCCL_CHECK(async_error);
}

bool NcclComm::query(cudaEvent_t done) {
  check_async_error();
  cudaError_t status = cudaEventQuery(done);
  if (status == cudaErrorNotReady) return false;
  CUDA_CHECK(status);
  return true;
}

void NcclComm::abort() {
  if (comm_) ncclCommAbort(comm_);
  comm_ = nullptr;
}

}  // namespace reel::parallel::cuda
