// Small layers shared by the models: RMSNorm, the SwiGLU and GELU MLPs, the flow-time embedding.
//
// Every module here allocates in its constructor and is initialised by init_weights(gen)
// (model/init.h); shapes are given as (..., D) where any leading dims are allowed.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "model/parallel_region.h"

namespace reel::model {

// x / sqrt(mean(x^2 over the last dim) + eps), no learnable weight. (..., D) -> (..., D).
torch::Tensor rms_norm(const torch::Tensor& x, double eps);

// norm(x) computed in the norm's weight dtype (fp32): under bf16 autocast x arrives in bf16, and
// LibTorch 1.13's CPU layer_norm refuses a bf16 input with fp32 weights.
torch::Tensor layer_norm(torch::nn::LayerNorm& norm, const torch::Tensor& x);

// RMSNorm with a learnable per-channel weight (init 1).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // (..., dim) -> (..., dim)
  void init_weights();

  torch::Tensor weight;  // (dim)

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// The SwiGLU hidden width used when an options struct says 0: 8*dim/3 rounded up to a multiple
// of 32 (Llama's rule without the multiplier), e.g. 128 -> 352 and 6144 -> 16384.
int64_t swiglu_hidden_dim(int64_t dim);

// silu(gate) * up for gate_up = [gate | up] (..., 2F) -> (..., F). One autograd node whose backward
// writes both halves of the (..., 2F) gradient in place (no chunk/cat copy); saves only gate_up.
torch::Tensor swiglu_activation(const torch::Tensor& gate_up);

// SwiGLU FFN without biases: w2(swiglu_activation(w13(x))). The gate and up projections
// are one fused Linear(dim -> 2*hidden) so the CPU runs one GEMM instead of two.
class SwiGLUImpl : public torch::nn::Module {
 public:
  SwiGLUImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);  // (..., dim) -> (..., dim)
  void init_weights(at::Generator& gen);          // Xavier

  torch::nn::Linear w13{nullptr};  // dim -> 2*hidden: [gate | up]
  torch::nn::Linear w2{nullptr};   // hidden -> dim
  ParallelRegion region;           // tensor parallel: see parallel_region.h
};
TORCH_MODULE(SwiGLU);

// Two-layer GELU MLP with biases (the text encoder's FFN): fc2(gelu(fc1(x))).
class GeluMLPImpl : public torch::nn::Module {
 public:
  GeluMLPImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);  // (..., dim) -> (..., dim)
  void init_weights(at::Generator& gen);          // Xavier weights, zero biases

  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
};
TORCH_MODULE(GeluMLP);

// Sinusoidal features of the flow time: [cos(1000 t f_i), sin(1000 t f_i)] with
// f_i = 10000^(-i/(dim/2)), i < dim/2 (DiT's timestep embedding of t scaled to [0, 1000]).
// t (B) float -> (B, dim); dim must be even.
torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim);

// Flow-time embedding: Linear(freq_dim -> dim) -> SiLU -> Linear(dim -> dim) on timestep_features.
class TimestepEmbedderImpl : public torch::nn::Module {
 public:
  TimestepEmbedderImpl(int64_t freq_dim, int64_t dim);
  torch::Tensor forward(const torch::Tensor& t);  // (B) in [0, 1] -> (B, dim)
  void init_weights(at::Generator& gen);          // N(0, 0.02) weights, zero biases (DiT)

  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};

 private:
  int64_t freq_dim_;
};
TORCH_MODULE(TimestepEmbedder);

}  // namespace reel::model
