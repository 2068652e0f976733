// Multi-head attention (see attention.h).
#include "model/attention.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/init.h"

namespace reel::model {
namespace {

double lowest_finite(torch::ScalarType dtype) {
  if (dtype == torch::kHalf) return -65504.0;
  return static_cast<double>(std::numeric_limits<float>::lowest());
}

// (B, H, N, Dh) -> (B, N, H*Dh)
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

// Passed to the autograd function as a non-differentiable, possibly undefined argument.
struct KeyMask {
  torch::Tensor mask;  // bool (B, Nk) or undefined
};

// softmax(q k^T * scale) v with a hand-written backward. LibTorch 1.13's CPU softmax backward
// runs ~10x slower than its forward; here the softmax gradient uses the FlashAttention identity
// rowsum(dP * P) = rowsum(dO * O), computed on (N, Dh) tensors, and dS = P * (dP - rowsum) is
// formed in place in dP's buffer, so backward makes no extra (N, Nk) allocation besides dP.
// Saves q*scale, k, v (as (B*H, N, Dh)), P (B*H, Nq, Nk) and O. Not twice differentiable.
class AttentionFunction : public torch::autograd::Function<AttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const KeyMask& key_mask) {
    int64_t b = q.size(0), h = q.size(1), n = q.size(2), m = k.size(2), dh = q.size(3);
    double scale = 1.0 / std::sqrt(static_cast<double>(dh));
    // Scaling q (N*Dh values) is cheaper than scaling the (N, Nk) scores.
    auto q3 = q.reshape({b * h, n, dh}) * scale;  // (BH, N, Dh), contiguous
    auto k3 = k.reshape({b * h, m, dh});           // (BH, Nk, Dh)
    auto v3 = v.reshape({b * h, m, dh});           // (BH, Nk, Dh)
    auto scores = torch::bmm(q3, k3.transpose(1, 2));  // (BH, N, Nk)
    if (key_mask.mask.defined()) {
      scores.view({b, h, n, m}).masked_fill_(key_mask.mask.logical_not().view({b, 1, 1, m}),
                                             lowest_finite(scores.scalar_type()));
    }
    auto p = torch::softmax(scores, -1);
    scores = torch::Tensor();  // release the (N, Nk) buffer before allocating the output
    auto out = torch::empty({b, h, n, dh}, q.options());
    auto out3 = out.view({b * h, n, dh});
    torch::bmm_out(out3, p, v3);
    ctx->save_for_backward({q3, k3, v3, p, out});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &q3 = saved[0], &k3 = saved[1], &v3 = saved[2], &p = saved[3], &out = saved[4];
    double scale = ctx->saved_data["scale"].toDouble();
    int64_t b = out.size(0), h = out.size(1), n = out.size(2), dh = out.size(3), m = k3.size(1);
    auto go = grad_outputs[0].reshape({b * h, n, dh});                      // dO (BH, N, Dh)
    auto dv = torch::bmm(p.transpose(1, 2), go);                            // (BH, Nk, Dh)
    auto ds = torch::bmm(go, v3.transpose(1, 2));                           // dP (BH, N, Nk)
    auto row = (go * out.view({b * h, n, dh})).sum(-1, /*keepdim=*/true);  // (BH, N, 1)
    ds.sub_(row).mul_(p);                                                   // dS = P * (dP - row)
    auto dq = torch::bmm(ds, k3).mul_(scale);                               // (BH, N, Dh)
    auto dk = torch::bmm(ds.transpose(1, 2), q3);                           // q3 is already scaled
    return {dq.view({b, h, n, dh}), dk.view({b, h, m, dh}), dv.view({b, h, m, dh}), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& key_mask) {
  REEL_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.size(3) == k.size(3) && k.sizes() == v.sizes() &&
                 q.size(0) == k.size(0) && q.size(1) == k.size(1),
             "attention wants q (B, H, N, Dh), k = v (B, H, Nk, Dh), got q ", q.sizes(), " k ", k.sizes(), " v ",
             v.sizes());
  if (key_mask.defined()) {
    REEL_CHECK(key_mask.dim() == 2 && key_mask.size(0) == k.size(0) && key_mask.size(1) == k.size(2),
               "key_mask must be (B, Nk) = (", k.size(0), ", ", k.size(2), "), got ", key_mask.sizes());
  }
  return AttentionFunction::apply(q, k, v, KeyMask{key_mask});
}

SelfAttentionImpl::SelfAttentionImpl(int64_t dim, int64_t heads, bool bias) : heads_(heads) {
  REEL_CHECK(dim % heads == 0, "dim ", dim, " not divisible by heads ", heads);
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(bias)));
  out = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(bias)));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& key_mask) {
  int64_t b = x.size(0), n = x.size(1), d = x.size(2);
  // (B, N, 3*D) -> (3, B, H, N, Dh) as a view; each of q, k, v is (B, H, N, Dh).
  auto parts = qkv(x).view({b, n, 3, heads_, d / heads_}).permute({2, 0, 3, 1, 4}).unbind(0);
  return out(merge_heads(attention(parts[0], parts[1], parts[2], key_mask)));
}

void SelfAttentionImpl::init_weights(at::Generator& gen) {
  init_linear_xavier(qkv, gen);
  init_linear_xavier(out, gen);
}

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
  REEL_CHECK(dim % heads == 0, "dim ", dim, " not divisible by heads ", heads);
  q = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
  kv = register_module("kv", torch::nn::Linear(torch::nn::LinearOptions(dim, 2 * dim).bias(false)));
  out = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context,
                                          const torch::Tensor& context_mask) {
  int64_t b = x.size(0), n = x.size(1), d = x.size(2), s = context.size(1), dh = d / heads_;
  auto qh = q(x).view({b, n, heads_, dh}).transpose(1, 2);                                  // (B, H, N, Dh)
  auto kvh = kv(context).view({b, s, 2, heads_, dh}).permute({2, 0, 3, 1, 4}).unbind(0);   // 2 x (B, H, S, Dh)
  return out(merge_heads(attention(qh, kvh[0], kvh[1], context_mask)));
}

void CrossAttentionImpl::init_weights(at::Generator& gen, bool zero_out) {
  init_linear_xavier(q, gen);
  init_linear_xavier(kv, gen);
  if (zero_out) {
    init_linear_zero(out);
  } else {
    init_linear_xavier(out, gen);
  }
}

}  // namespace reel::model
