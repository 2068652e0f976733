// Optimizer state and checkpoint shares of a module sharded by FSDP (parallel/fsdp.h), shared by
// the trainers: a resumed (whole) AdamW state cut into the shards, and each rank's part of the
// weights and moments for a collective checkpoint write (trainer/checkpoint_sharded.h).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "parallel/fsdp.h"
#include "trainer/checkpoint_sharded.h"

namespace reel::trainer {

// An AdamW over fsdp.shards() whose state, where `whole` (an AdamW over `module`'s parameters, e.g.
// just loaded from a checkpoint) has one, is this rank's shard of it. Local: no communication.
std::unique_ptr<torch::optim::AdamW> sharded_adamw(const parallel::Fsdp& fsdp, torch::nn::Module& module,
                                                   const torch::optim::AdamW& whole,
                                                   const torch::optim::AdamWOptions& options);

// Adds this rank's shares of `module` (sharded by `fsdp`, no tensor parallelism) and of its AdamW
// `optimizer` over the shards: "<model_prefix><name>" and "<optim_prefix><name>/{exp_avg,
// exp_avg_sq,step}", as add_module_state / add_adamw_state name them in one process, and the
// module's buffers. `writes`: this rank writes its spans (one replica of each shard does);
// `writes_whole`: it writes the tensors every rank holds whole (one rank does).
void add_fsdp_shares(const parallel::Fsdp& fsdp, torch::nn::Module& module, const torch::optim::AdamW& optimizer,
                     const std::string& model_prefix, const std::string& optim_prefix, bool writes,
                     bool writes_whole, ShardedCheckpoint& ckpt);

}  // namespace reel::trainer
