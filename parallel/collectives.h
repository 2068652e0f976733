// Collectives as autograd functions: each forward collective runs its adjoint in backward. These
// are the pieces tensor, sequence and context parallelism are made of (Megatron-LM's f and g
// operators, its sequence-parallel gather/scatter, DeepSpeed-Ulysses' all-to-all).
//
// Every rank of `group` must call the same function with the same shapes (backward included:
// the adjoint is collective too). Tensors are on the group's device; they need not be contiguous.
// The group must outlive the backward pass.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "parallel/communicator.h"

namespace reel::parallel {

// Entering a parallel region: forward the identity, backward the sum of the gradients over the
// group (Megatron's f: before a column-parallel layer whose input every rank holds).
torch::Tensor copy_to_group(const torch::Tensor& x, Communicator& group);

// Leaving a parallel region: forward the sum over the group, backward the identity (Megatron's g:
// after a row-parallel layer).
torch::Tensor reduce_from_group(const torch::Tensor& x, Communicator& group);

// Forward: the ranks' tensors concatenated along `dim` in rank order; backward: the gradient
// summed over the group and split along `dim`, each rank keeping its part (reduce-scatter).
// Sequence parallel's entry into a parallel region; context parallel's K/V gather.
torch::Tensor gather_along(const torch::Tensor& x, int64_t dim, Communicator& group);

// Forward: as gather_along; backward: this rank's part of the gradient, which every rank holds
// whole because what follows runs alike on every rank (split). Sequence parallel's gather before
// layers that every rank runs on the whole sequence.
torch::Tensor gather_whole_along(const torch::Tensor& x, int64_t dim, Communicator& group);

// Forward: the sum over the group, split along `dim` (which the group size must divide), rank r
// keeping part r; backward: the parts' gradients all-gathered along `dim`. Sequence parallel's
// exit from a parallel region.
torch::Tensor reduce_scatter_along(const torch::Tensor& x, int64_t dim, Communicator& group);

// Forward: this rank's part of x split along `dim` (no communication; every rank holds the same
// x); backward: the parts' gradients all-gathered along `dim`.
torch::Tensor split_along(const torch::Tensor& x, int64_t dim, Communicator& group);

// Forward: x split along scatter_dim into group-size parts, part j sent to rank j, and the parts
// received concatenated along gather_dim in rank order (all-to-all); backward: the inverse
// all-to-all. Ulysses: (sequence split, all heads) <-> (whole sequence, heads split).
torch::Tensor all_to_all_along(const torch::Tensor& x, int64_t scatter_dim, int64_t gather_dim, Communicator& group);

}  // namespace reel::parallel
