// Context parallelism: the tokens of every sample split over the ranks of a cp group, each rank
// keeping one contiguous part of the sequence through the whole transformer; only self-attention
// needs the other parts. Three ways to attend over the whole sequence:
//   allgather_kv  K and V all-gathered (their gradients reduce-scattered back), as Movie Gen does;
//   ulysses       all-to-all from (sequence part, all heads) to (whole sequence, heads part) and
//                 back (DeepSpeed-Ulysses), the heads split over the group;
//   ring          K/V parts passed around the ring, each step's partial softmax merged exactly
//                 through its log-sum-exp (Ring Attention); the gradients travel the ring back.
// Convention: every rank computes the same loss from the gathered output, so each rank's
// gradients count its own tokens cp times and their mean over the group is the one-process
// gradient (FSDP averages over dp_shard x cp).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "parallel/communicator.h"

namespace reel::parallel {

// softmax(q k^T / sqrt(Dh)) v for q, k, v (B, H, N, Dh), the model's own kernel.
using AttentionFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;

// This rank's part of x along `dim` (a view; no communication): backward leaves the other parts'
// gradients zero. Fatal when the group size does not divide the dimension.
torch::Tensor part_along(const torch::Tensor& x, int64_t dim, const Communicator& cp);

// q, k, v (B, H, N / cp, Dh): this rank's queries, keys and values, the ranks' parts in rank
// order along the sequence -> (B, H, N / cp, Dh), this rank's queries attending to every key.
torch::Tensor allgather_kv_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     Communicator& cp, const AttentionFn& attend);
// The same with the heads split over cp for the exchange (H % cp == 0).
torch::Tensor ulysses_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                Communicator& cp, const AttentionFn& attend);
// The same passing K/V around the ring (cp - 1 steps); the attention is computed in plain
// differentiable operations, block by block.
torch::Tensor ring_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, Communicator& cp);

// Forward: x sent to rank (r + 1) % n and the tensor of rank (r - 1) % n returned; backward: the
// gradient sent the other way.
torch::Tensor ring_shift(const torch::Tensor& x, Communicator& cp);

// The function for parallel.cp_mode ("allgather_kv", "ulysses", "ring"); fatal for another.
AttentionFn context_parallel_attention(const std::string& mode, Communicator& cp, AttentionFn attend);

}  // namespace reel::parallel
