// The NCCL layer on the device (built with the CUDA toolkit; skips itself without one CUDA device
// per rank): all_reduce (fp32, and bf16 accumulated in fp32), all_gather, reduce_scatter,
// broadcast and all_to_all against the values the MPI tests expect; and the Communicator over it
// (NcclCommunicator) on LibTorch CUDA tensors, which needs a CUDA LibTorch as well.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <vector>

#include "parallel/cuda/nccl_comm.h"
#include "parallel/cuda/nccl_communicator.h"
#include "parallel/mpi_communicator.h"
#include "tests/parallel/mpi_test_env.h"

namespace reel::parallel {
namespace {

template <typename T>
struct DeviceBuffer {
  explicit DeviceBuffer(const std::vector<T>& host) : n(host.size()) {
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)));
    CUDA_CHECK(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  std::vector<T> host() const {
    std::vector<T> out(n);
    CUDA_CHECK(cudaMemcpy(out.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    return out;
  }
  T* ptr = nullptr;
  size_t n;
};

void finish(cuda::NcclComm& comm, cudaEvent_t done) {
  CUDA_CHECK(cudaStreamWaitEvent(nullptr, done, 0));
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
  EXPECT_TRUE(comm.query(done));  // complete once the default stream, ordered after it, is
  CUDA_CHECK(cudaEventDestroy(done));
}

TEST(NcclComm, CollectivesOnTheDevice) {
  Communicator& w = reel::testing::world();
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < w.size())
    GTEST_SKIP() << "needs one CUDA device per rank: " << w.size() << " ranks, " << devices << " devices";
  CUDA_CHECK(cudaSetDevice(w.rank()));
  const int n = w.size(), r = w.rank();
  cuda::NcclComm comm(static_cast<MpiCommunicator&>(w).comm());
  ASSERT_EQ(comm.size(), n);

  DeviceBuffer<float> sum(std::vector<float>{float(r + 1), 2.0f * (r + 1)});
  finish(comm, comm.all_reduce(sum.ptr, sum.ptr, 2, ncclFloat32, ncclSum, nullptr));
  EXPECT_EQ(sum.host(), (std::vector<float>{n * (n + 1) / 2.0f, float(n * (n + 1))}));

  const float small = 3.0f / 1024;  // see Bf16ReductionsAccumulateInFp32 in communicator_test.cpp
  DeviceBuffer<__nv_bfloat16> b(std::vector<__nv_bfloat16>{__float2bfloat16(r == 0 ? 1.0f : small)});
  finish(comm, comm.all_reduce(b.ptr, b.ptr, 1, ncclBfloat16, ncclSum, nullptr));
  EXPECT_EQ(__bfloat162float(b.host()[0]), __bfloat162float(__float2bfloat16(1.0f + small * (n - 1))));

  DeviceBuffer<int> mine(std::vector<int>{10 * r, 10 * r + 1});
  DeviceBuffer<int> all(std::vector<int>(2 * n, -1));
  finish(comm, comm.all_gather(mine.ptr, all.ptr, 2, ncclInt32, nullptr));
  for (int i = 0; i < n; ++i) EXPECT_EQ(all.host()[2 * i + 1], 10 * i + 1);

  std::vector<float> in(n);
  for (int i = 0; i < n; ++i) in[i] = float(i * (r + 1));
  DeviceBuffer<float> rs_in(in), rs_out(std::vector<float>{-1});
  finish(comm, comm.reduce_scatter(rs_in.ptr, rs_out.ptr, 1, ncclFloat32, ncclSum, nullptr));
  EXPECT_EQ(rs_out.host()[0], float(r * n * (n + 1) / 2));

  DeviceBuffer<float> root(std::vector<float>{r == n - 1 ? 4.5f : 0.0f});
  finish(comm, comm.broadcast(root.ptr, 1, ncclFloat32, n - 1, nullptr));
  EXPECT_EQ(root.host()[0], 4.5f);

  std::vector<int> chunks(n);
  for (int j = 0; j < n; ++j) chunks[j] = 100 * r + j;
  DeviceBuffer<int> a2a_in(chunks), a2a_out(std::vector<int>(n, -1));
  finish(comm, comm.all_to_all(a2a_in.ptr, a2a_out.ptr, 1, ncclInt32, nullptr));
  for (int i = 0; i < n; ++i) EXPECT_EQ(a2a_out.host()[i], 100 * i + r);
}

TEST(NcclCommunicator, TorchCudaTensors) {
  Communicator& w = reel::testing::world();
  int devices = 0;
  if (!torch::cuda::is_available() || cudaGetDeviceCount(&devices) != cudaSuccess || devices < w.size())
    GTEST_SKIP() << "needs a CUDA LibTorch and one CUDA device per rank: " << w.size() << " ranks, " << devices
                 << " devices";
  CUDA_CHECK(cudaSetDevice(w.rank()));
  const int n = w.size(), r = w.rank();
  NcclCommunicator comm(static_cast<MpiCommunicator&>(w).split_mpi(0, r, "nccl_test"), reel::testing::watchdog());
  const auto on_gpu = torch::TensorOptions().device(torch::kCUDA, r);

  torch::Tensor sum = torch::full({5}, float(r + 1), on_gpu);
  comm.all_reduce(sum);  // wait() orders the default stream after it; .cpu() runs on that stream
  EXPECT_TRUE(torch::equal(sum.cpu(), torch::full({5}, n * (n + 1) / 2.0f)));

  torch::Tensor avg = torch::full({3}, float(2 * r), on_gpu.dtype(torch::kBFloat16));
  comm.all_reduce(avg, ReduceOp::kAvg);
  EXPECT_EQ(avg.cpu().to(torch::kFloat)[0].item<float>(), float(n - 1));

  torch::Tensor mine = torch::arange(2, on_gpu.dtype(torch::kLong)) + 10 * r, all = torch::empty({2 * n}, mine.options());
  comm.all_gather(all, mine);
  for (int i = 0; i < n; ++i) EXPECT_EQ(all[2 * i + 1].item<int64_t>(), 10 * i + 1);

  torch::Tensor in = torch::arange(n, on_gpu.dtype(torch::kFloat)) * (r + 1), out = torch::empty({1}, on_gpu);
  comm.reduce_scatter(out, in);
  EXPECT_EQ(out.item<float>(), float(r * n * (n + 1) / 2));

  torch::Tensor root = torch::full({2}, r == n - 1 ? 4.5f : 0.0f, on_gpu);
  comm.broadcast(root, n - 1);
  EXPECT_EQ(root[1].item<float>(), 4.5f);

  torch::Tensor chunks = torch::arange(n, on_gpu.dtype(torch::kInt)) + 100 * r, got = torch::empty_like(chunks);
  comm.all_to_all(got, chunks);
  for (int i = 0; i < n; ++i) EXPECT_EQ(got[i].item<int>(), 100 * i + r);

  comm.barrier();
  comm.synchronize();  // every operation above complete, under the watchdog
  // (A CPU tensor is refused by a fatal check that aborts the job, as every rank must stop.)
}

}  // namespace
}  // namespace reel::parallel
