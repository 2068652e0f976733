// `reel plan`: what a recipe costs before it is launched. Everything is computed from the recipe
// alone (nothing is allocated), so the 30B configuration can be planned on a laptop.
//
// The model, per training step on one rank (GPU) of the mesh:
//   tokens    the largest clip the plan sizes (plan.clip, else the largest of data.buckets),
//             through the TAE's compression (plan.compression) and the patch: T x H x W tokens.
// One model copy per rank: the CPU-only trainer.batch_threads copies are not counted.
//   samples   data.batch_size (or data.batch_budget / clip elements) per micro-batch over the dp
//             ranks (dp_replicate x dp_shard), times trainer.grad_accum.
//   FLOPs     model/counts.h: 3 x forward of the trained parts + 1 x forward of frozen encoders.
//             Text lengths: the dataset's captions when data.dir exists (per slot, the mean of the
//             longest caption of each batch-sized group, as batches are padded), else max_len.
//   memory    state:     fp32 parameters, fp32 gradients, AdamW's two fp32 moments and the fp32
//                        EMA of the trained parameters, sharded over the FSDP group (dp_shard x
//                        cp) and, for the blocks' weights, over tp;
//                        frozen encoders in the compute dtype, sharded alike (none with a text cache)
//             gathered:  FSDP's working copies: two blocks in the compute dtype (the one running and
//                        the one prefetched) and one block's gradient in fp32
//             activations, elements per token in the compute dtype, the coefficients those of
//                        Reel's layers as `reel bench step --measure` sees them (fp32 on the CPU;
//                        tests/e2e/plan.sh holds the plan to within 10% of a run):
//                        video block     16 D + 3.75 F per token, + 2 S D per sample (text K/V)
//                        outside blocks  6 P + 18 D per token (P = values per patch)
//                        trained text layer  17 De per text token (frozen encoders keep none)
//                        tensor parallel divides a block's by tp (the norms' and residuals' half
//                        only with sequence_parallel); context parallel divides tokens by cp and
//                        allgather_kv adds the gathered K and V (2 N D / tp) of the block running;
//                        activation checkpointing keeps only each block's input (D per token)
//                        plus one block's full activations while it is recomputed
//             buffers:   the largest collective's buffer (a gathered sequence or block)
//   communication per rank per step: FSDP all-gathers (twice with reshard_after_forward) and
//             reduce-scatters of the blocks, the replicas' all-reduce of the shards, tensor and
//             sequence parallel's all-gathers / reduce-scatters (or all-reduces) of each block's
//             three regions forward and backward, context parallel's K/V all-gathers.
//   time      compute (with full activation checkpointing, the blocks' forward runs twice) at
//             kMatmulEfficiency of the GPU's dense bf16 (fp32: tf32) peak; tp and cp collectives exposed on NVLink (inside a node of 8) or the network; FSDP and replica
//             traffic overlapped with compute, only the excess exposed. MFU = model FLOPs / (time
//             x peak).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/recipe.h"

namespace reel::trainer {

struct GpuSpec {
  std::string name;
  double peak_flops;       // dense bf16 tensor-core FLOP/s (fp32 runs at the tf32 rate, half)
  double memory_bytes;     // HBM
  double nvlink_bytes_s;   // per GPU, one direction
  double network_bytes_s;  // per GPU, between nodes
  int gpus_per_node;
};
// "h100" or "h200"; UserError naming the known ones.
const GpuSpec& gpu_spec(const std::string& name);

constexpr double kMatmulEfficiency = 0.6;  // share of peak a large bf16 GEMM-bound step sustains

struct PlanComponent {
  std::string name;
  int64_t params = 0;
  bool trained = true;
};

struct Plan {
  std::string recipe;
  GpuSpec gpu;
  int gpus = 1, dp_replicate = 1, dp_shard = 1, cp = 1, tp = 1;
  std::vector<PlanComponent> components;
  int64_t params_total = 0, params_transformer = 0;
  int64_t clip_frames = 0, clip_height = 0, clip_width = 0;  // pixels
  int64_t tokens_per_sample = 0;
  std::vector<int64_t> text_tokens;       // per slot
  double samples_per_step = 0;            // global, all micro-batches
  double samples_per_rank = 0;            // per micro-batch on one rank (of its dp group)
  double flops_per_sample = 0, flops_per_step = 0, flops_per_gpu = 0;  // model FLOPs (MFU counts these)
  double hardware_flops_per_step = 0;  // what runs: + the recomputed blocks' forward with checkpointing
  int64_t dtype_bytes = 4;
  // Memory per GPU, bytes.
  double parameter_bytes = 0, gradient_bytes = 0, optimizer_bytes = 0, ema_bytes = 0;  // their sum: state_bytes
  double state_bytes = 0, frozen_bytes = 0, gathered_bytes = 0, activation_bytes = 0,
         activation_bytes_checkpointed = 0, activation_bytes_none = 0, buffer_bytes = 0, memory_per_gpu_bytes = 0;
  // Communication per GPU per step, bytes sent.
  double fsdp_bytes = 0, replicate_bytes = 0, tp_bytes = 0, cp_bytes = 0;
  double compute_s = 0, exposed_comm_s = 0, predicted_step_s = 0, predicted_mfu = 0;
  std::vector<std::string> warnings;
};

// gpus = 0: the mesh of the recipe with dp_shard -1 taken as 1. gpu = "": plan.gpu.
Plan make_plan(const Recipe& recipe, int gpus, const std::string& gpu);

std::string plan_text(const Plan& p);  // the human-readable report
std::string plan_json(const Plan& p);  // the keys above, one JSON object

}  // namespace reel::trainer
