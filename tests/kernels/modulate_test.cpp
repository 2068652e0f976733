// adaLN modulation: the reference against its definition, the checked dispatcher, and (where
// a GPU exists) the CUDA kernel against the reference.
#include <gtest/gtest.h>

#include "common/error.h"
#include "kernels/modulate.h"
#ifdef REEL_HAVE_CUDA
#include "kernels/cuda/modulate.h"
#endif

using namespace reel::kernels;

TEST(Modulate, ReferenceMatchesDefinitionPerSample) {
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({3, 5, 8}), shift = torch::randn({3, 8}), scale = torch::randn({3, 8});
  torch::Tensor y = modulate(x, shift, scale);
  for (int b = 0; b < 3; ++b) {
    for (int n = 0; n < 5; ++n) {
      EXPECT_TRUE(torch::allclose(y[b][n], x[b][n] * (1 + scale[b]) + shift[b], 1e-6, 1e-6));
    }
  }
}

TEST(Modulate, RejectsMismatchedShapes) {
  torch::Tensor x = torch::randn({2, 4, 8});
  EXPECT_THROW(modulate(x, torch::randn({2, 7}), torch::randn({2, 7})), reel::UserError);
  EXPECT_THROW(modulate(x, torch::randn({3, 8}), torch::randn({3, 8})), reel::UserError);
}

#ifdef REEL_HAVE_CUDA
TEST(ModulateCuda, MatchesReference) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(1);
  const int64_t B = 4, N = 300, D = 96;
  torch::Tensor x = torch::randn({B, N, D}), shift = torch::randn({B, D}), scale = torch::randn({B, D});
  torch::Tensor expect = modulate_reference(x, shift, scale), got = torch::empty_like(x);
  float *dx, *dshift, *dscale, *dy;
  ASSERT_EQ(cudaMalloc(&dx, x.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, x.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dshift, shift.nbytes()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dscale, scale.nbytes()), cudaSuccess);
  cudaMemcpy(dx, x.data_ptr<float>(), x.nbytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(dshift, shift.data_ptr<float>(), shift.nbytes(), cudaMemcpyHostToDevice);
  cudaMemcpy(dscale, scale.data_ptr<float>(), scale.nbytes(), cudaMemcpyHostToDevice);
  ASSERT_EQ(cuda::modulate_f32(dx, dshift, dscale, dy, B, N, D, nullptr), cudaSuccess);
  cudaMemcpy(got.data_ptr<float>(), dy, x.nbytes(), cudaMemcpyDeviceToHost);
  EXPECT_EQ(cuda::modulate_f32(nullptr, dshift, dscale, dy, B, N, D, nullptr), cudaErrorInvalidValue);
  cudaFree(dx); cudaFree(dy); cudaFree(dshift); cudaFree(dscale);
  EXPECT_TRUE(torch::allclose(got, expect, 1e-5, 1e-5));
}
#endif
