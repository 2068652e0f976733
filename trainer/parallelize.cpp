// The text-to-video model's tensor-parallel plan (see parallelize.h).
#include "trainer/parallelize.h"

#include "common/error.h"
#include "parallel/collectives.h"
#include "parallel/tensor_parallel.h"

namespace reel::trainer {
namespace {

void replace(torch::Tensor& param, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  param.set_data(value.clone());
}

}  // namespace

void apply_tensor_parallel(model::T2VModelImpl& model, parallel::Communicator& tp) {
  if (tp.size() == 1) return;
  const auto& o = model.options().transformer;
  if (o.heads % tp.size() != 0)
    fail("model.heads = ", o.heads, " does not split over parallel.tp = ", tp.size(), "; use a tp that divides it");
  model::ParallelRegion region;
  region.enter = [&tp](const torch::Tensor& x) { return parallel::copy_to_group(x, tp); };
  region.context = region.enter;
  region.exit = [&tp](const torch::Tensor& x) { return parallel::reduce_from_group(x, tp); };
  for (const auto& holder : model.transformer->block_list()) {
    const auto& block = holder.ptr();
    auto& attn = *block->attn;
    REEL_CHECK(!attn.qv_bias.defined(), "tensor parallel: the video blocks' self-attention has no biases");
    replace(attn.qkv->weight, parallel::column_shard(attn.qkv->weight, 3, tp));
    replace(attn.out->weight, parallel::row_shard(attn.out->weight, tp));
    attn.set_local_heads(o.heads / tp.size());
    attn.region = region;

    auto& cross = *block->cross;
    replace(cross.q->weight, parallel::column_shard(cross.q->weight, 1, tp));
    replace(cross.kv->weight, parallel::column_shard(cross.kv->weight, 2, tp));
    replace(cross.out->weight, parallel::row_shard(cross.out->weight, tp));
    cross.set_local_heads(o.heads / tp.size());
    cross.region = region;

    auto& ffn = *block->ffn;
    const int64_t hidden = ffn.w2->weight.size(1);
    if (hidden % tp.size() != 0)
      fail("the FFN width ", hidden, " (model.ffn_dim) does not split over parallel.tp = ", tp.size());
    replace(ffn.w13->weight, parallel::column_shard(ffn.w13->weight, 2, tp));
    replace(ffn.w2->weight, parallel::row_shard(ffn.w2->weight, tp));
    ffn.region = region;
  }
}

}  // namespace reel::trainer
