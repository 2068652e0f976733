// The text-to-video model's tensor-parallel plan (see parallelize.h).
#include "trainer/parallelize.h"

#include "common/error.h"
#include "model/attention.h"
#include "parallel/collectives.h"
#include "parallel/context_parallel.h"
#include "parallel/tensor_parallel.h"

namespace reel::trainer {

TensorParallelPlan tensor_parallel_plan(const model::T2VModelImpl& model) {
  TensorParallelPlan plan;
  const TensorParallelCut row{false, 1};
  for (const std::string& block : model.block_prefixes()) {
    plan[block + "attn.qkv.weight"] = {true, 3};
    plan[block + "attn.out.weight"] = row;
    plan[block + "cross.q.weight"] = {true, 1};
    plan[block + "cross.kv.weight"] = {true, 2};
    plan[block + "cross.out.weight"] = row;
    plan[block + "ffn.w13.weight"] = {true, 2};
    plan[block + "ffn.w2.weight"] = row;
  }
  return plan;
}

torch::Tensor tensor_parallel_slice(const TensorParallelCut& cut, const torch::Tensor& whole,
                                    const parallel::Communicator& tp) {
  return cut.column ? parallel::column_shard(whole, cut.groups, tp) : parallel::row_shard(whole, tp);
}

torch::Tensor tensor_parallel_gather(const TensorParallelCut& cut, const torch::Tensor& local,
                                     parallel::Communicator& tp) {
  return cut.column ? parallel::gather_column_shards(local, cut.groups, tp) : parallel::gather_row_shards(local, tp);
}

std::vector<std::vector<IndexSegment>> tensor_parallel_index_map(const TensorParallelCut& cut, c10::IntArrayRef local,
                                                                 int rank, int size, std::vector<int64_t>& whole) {
  whole = local.vec();
  std::vector<std::vector<IndexSegment>> map;
  for (int64_t n : local) map.push_back({{0, 0, n}});
  const int64_t d = cut.column ? 0 : 1;
  REEL_CHECK(static_cast<int64_t>(local.size()) > d, "a ", cut.column ? "column" : "row",
             "-parallel cut of a tensor of ", local.size(), " dimensions");
  const int64_t blocks = cut.column ? cut.groups : 1, part = local[d] / blocks;
  REEL_CHECK(part * blocks == local[d], local[d], " local rows do not split into ", blocks, " blocks");
  whole[d] = local[d] * size;
  map[d].clear();
  for (int64_t b = 0; b < blocks; ++b) map[d].push_back({b * part, b * part * size + rank * part, part});
  return map;
}

TensorParallelPlan apply_tensor_parallel(model::T2VModelImpl& model, parallel::Communicator& tp, bool sequence_parallel) {
  if (tp.size() == 1) return {};
  const auto& o = model.options().transformer;
  if (o.heads % tp.size() != 0)
    fail("model.heads = ", o.heads, " does not split over parallel.tp = ", tp.size(), "; use a tp that divides it");
  model::ParallelRegion region;
  const model::ParallelRegion::Fn copy = [&tp](const torch::Tensor& x) { return parallel::copy_to_group(x, tp); };
  region.context = copy;  // the text: whole on every rank, each projecting it for its heads
  if (sequence_parallel) {  // blocks: (B, N / tp, D) in and out
    region.enter = [&tp](const torch::Tensor& x) { return parallel::gather_along(x, 1, tp); };
    region.exit = [&tp](const torch::Tensor& x) { return parallel::reduce_scatter_along(x, 1, tp); };
    auto& seq = model.transformer->sequence;
    seq.split = [&tp](const torch::Tensor& x, int64_t dim) { return parallel::split_along(x, dim, tp); };
    seq.gather = [&tp](const torch::Tensor& x, int64_t dim) { return parallel::gather_whole_along(x, dim, tp); };
    seq.shared = copy;
  } else {
    region.enter = copy;
    region.exit = [&tp](const torch::Tensor& x) { return parallel::reduce_from_group(x, tp); };
  }
  for (const auto& holder : model.transformer->block_list()) {
    auto& block = *holder.ptr();
    REEL_CHECK(!block.attn->qv_bias.defined(), "tensor parallel: the video blocks' self-attention has no biases");
    const int64_t hidden = block.ffn->w2->weight.size(1);
    if (hidden % tp.size() != 0)
      fail("the FFN width ", hidden, " (model.ffn_dim) does not split over parallel.tp = ", tp.size());
    block.attn->set_local_heads(o.heads / tp.size());
    block.attn->region = region;
    block.cross->set_local_heads(o.heads / tp.size());
    block.cross->region = region;
    block.ffn->region = region;
    if (sequence_parallel) block.shared = copy;
  }
  const TensorParallelPlan plan = tensor_parallel_plan(model);
  auto params = model.named_parameters();
  torch::NoGradGuard no_grad;
  for (const auto& [name, cut] : plan) {
    torch::Tensor* param = params.find(name);
    REEL_CHECK(param != nullptr, "tensor parallel plan names '", name, "', which the model does not have");
    param->set_data(tensor_parallel_slice(cut, *param, tp));
  }
  return plan;
}

void apply_context_parallel(model::T2VModelImpl& model, parallel::Communicator& cp, const std::string& mode) {
  if (cp.size() == 1) return;
  auto local = [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return model::attention(q, k, v, torch::Tensor());
  };
  auto attend = parallel::context_parallel_attention(mode, cp, local);
  for (const auto& holder : model.transformer->block_list()) holder.ptr()->attn->region.attend = attend;
  auto& seq = model.transformer->sequence;
  seq.split = [&cp, inner = seq.split](const torch::Tensor& x, int64_t dim) {
    torch::Tensor part = parallel::part_along(x, dim, cp);  // then sequence parallel's split of it
    return inner ? inner(part, dim) : part;
  };
  seq.gather_out = [&cp](const torch::Tensor& x, int64_t dim) { return parallel::gather_along(x, dim, cp); };
}

}  // namespace reel::trainer
