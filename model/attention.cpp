// Multi-head attention (see attention.h).
#include "model/attention.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/init.h"
#include "model/layers.h"

namespace reel::model {
namespace {

double lowest_finite(torch::ScalarType dtype) {
  if (dtype == torch::kHalf) return -65504.0;
  // bf16's largest finite value (3.3895e38) is below fp32's: fp32's lowest overflows it.
  if (dtype == torch::kBFloat16) return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
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

// softmax(q k^T * scale) v with a hand-written backward that stores only O and, per row, the max
// score and 1/sum(exp), not the (B, H, N, Nk) probabilities: backward recomputes P from them and
// uses rowsum(dP * P) = rowsum(dO * O). Every step is one batched kernel over all B*H slices,
// computed in place where possible (fewer passes over memory, fewer operator launches than
// LibTorch's softmax + its slow CPU softmax backward). Not twice differentiable.
class AttentionFunction : public torch::autograd::Function<AttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const KeyMask& key_mask) {
    int64_t b = q.size(0), h = q.size(1), n = q.size(2), m = k.size(2), dh = q.size(3);
    double scale = 1.0 / std::sqrt(static_cast<double>(dh));
    auto q3 = q.reshape({b * h, n, dh}) * scale;  // (BH, N, Dh), pre-scaled
    auto k3 = k.reshape({b * h, m, dh});  // (BH, Nk, Dh)
    auto v3 = v.reshape({b * h, m, dh});  // (BH, Nk, Dh)
    torch::Tensor masked;                 // bool (BH, 1, Nk), true = masked out
    if (key_mask.mask.defined()) masked = key_mask.mask.logical_not().repeat_interleave(h, 0).unsqueeze(1);
    auto scores = torch::bmm(q3, k3.transpose(1, 2));
    if (masked.defined()) scores.masked_fill_(masked, lowest_finite(q.scalar_type()));
    auto row_max = std::get<0>(scores.max(-1, /*keepdim=*/true));
    scores.sub_(row_max).exp_();
    auto row_inv_sum = scores.sum(-1, /*keepdim=*/true).reciprocal_();
    auto out = torch::bmm(scores, v3).mul_(row_inv_sum).view({b, h, n, dh});
    ctx->save_for_backward({q3, k3, v3, out, row_max, row_inv_sum});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["heads"] = h;
    ctx->saved_data["has_mask"] = masked.defined();
    if (masked.defined()) ctx->saved_data["masked"] = masked;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &q3 = saved[0], &k3 = saved[1], &v3 = saved[2], &out = saved[3];
    const auto &row_max = saved[4], &row_inv_sum = saved[5];
    double scale = ctx->saved_data["scale"].toDouble();
    int64_t h = ctx->saved_data["heads"].toInt();
    int64_t bh = q3.size(0), n = q3.size(1), dh = q3.size(2), m = k3.size(1);
    auto go = grad_outputs[0].reshape({bh, n, dh});  // dO
    // P, recomputed
    auto p = torch::bmm(q3, k3.transpose(1, 2));
    if (ctx->saved_data["has_mask"].toBool()) {
      p.masked_fill_(ctx->saved_data["masked"].toTensor(), lowest_finite(q3.scalar_type()));
    }
    p.sub_(row_max).exp_().mul_(row_inv_sum);
    auto dv = torch::bmm(p.transpose(1, 2), go);
    auto row_dot = (go * out.view({bh, n, dh})).sum(-1, /*keepdim=*/true);  // rowsum(dO * O)
    auto ds = torch::bmm(go, v3.transpose(1, 2));                            // dP
    ds.sub_(row_dot).mul_(p);                                                // dS = P (dP - rowsum(dO O))
    auto dq = torch::bmm(ds, k3).mul_(scale);
    auto dk = torch::bmm(ds.transpose(1, 2), q3);  // q3 is already scaled
    int64_t b = bh / h;
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

torch::Tensor attention_entropy(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& key_mask) {
  REEL_CHECK(q.dim() == 4 && k.dim() == 4 && q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
             "attention_entropy wants q (B, H, N, Dh), k (B, H, Nk, Dh), got q ", q.sizes(), " k ", k.sizes());
  torch::NoGradGuard no_grad;
  auto scores = torch::matmul(q.to(torch::kFloat32), k.to(torch::kFloat32).transpose(-1, -2)) /
                std::sqrt(static_cast<double>(q.size(3)));
  if (key_mask.defined()) {
    REEL_CHECK(key_mask.dim() == 2 && key_mask.size(0) == k.size(0) && key_mask.size(1) == k.size(2),
               "key_mask must be (B, Nk) = (", k.size(0), ", ", k.size(2), "), got ", key_mask.sizes());
    scores.masked_fill_(key_mask.logical_not().view({k.size(0), 1, 1, k.size(2)}), -std::numeric_limits<float>::infinity());
  }
  auto log_p = torch::log_softmax(scores, -1);
  auto terms = log_p.exp() * log_p;
  terms.masked_fill_(torch::isinf(log_p), 0);  // masked keys: 0 * -inf
  return terms.sum(-1).neg().mean(std::vector<int64_t>{0, 2});
}

SelfAttentionImpl::SelfAttentionImpl(int64_t dim, int64_t heads, bool bias) : heads_(heads), head_dim_(dim / heads) {
  REEL_CHECK(dim % heads == 0, "dim ", dim, " not divisible by heads ", heads);
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(false)));
  if (bias) qv_bias = register_parameter("qv_bias", torch::zeros({2 * dim}));
  out = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(bias)));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x_in, const torch::Tensor& key_mask) {
  const torch::Tensor x = ParallelRegion::apply(region.enter, x_in);
  int64_t b = x.size(0), n = x.size(1), d = heads_ * head_dim_;
  // (B, N, 3*D) -> (3, B, H, N, Dh) as a view; each of q, k, v is (B, H, N, Dh).
  torch::Tensor projected;
  if (qv_bias.defined()) {
    auto bias = torch::cat({qv_bias.narrow(0, 0, d), torch::zeros({d}, qv_bias.options()), qv_bias.narrow(0, d, d)});
    projected = torch::nn::functional::linear(x, qkv->weight, bias);
  } else {
    projected = qkv(x);
  }
  auto parts = projected.view({b, n, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4}).unbind(0);
  if (qk_norm) {
    for (int i = 0; i < 2; ++i) parts[i] = rms_norm(parts[i], 1e-6);
  }
  torch::Tensor o;
  if (region.attend) {
    REEL_CHECK(!key_mask.defined(), "self-attention: a key mask with a parallel attention (context parallel)");
    o = region.attend(parts[0], parts[1], parts[2]);
  } else {
    if (keep_entropy) entropy = attention_entropy(parts[0], parts[1], key_mask);
    o = attention(parts[0], parts[1], parts[2], key_mask);
  }
  return ParallelRegion::apply(region.exit, out(merge_heads(o)));
}

void SelfAttentionImpl::init_weights(at::Generator& gen) {
  init_linear_xavier(qkv, gen);
  if (qv_bias.defined()) init_constant(qv_bias, 0.0);
  init_linear_xavier(out, gen);
}

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t heads) : heads_(heads), head_dim_(dim / heads) {
  REEL_CHECK(dim % heads == 0, "dim ", dim, " not divisible by heads ", heads);
  q = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
  kv = register_module("kv", torch::nn::Linear(torch::nn::LinearOptions(dim, 2 * dim).bias(false)));
  out = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x_in, const torch::Tensor& context_in,
                                          const torch::Tensor& context_mask) {
  const torch::Tensor x = ParallelRegion::apply(region.enter, x_in);
  const torch::Tensor context = ParallelRegion::apply(region.context, context_in);
  int64_t b = x.size(0), n = x.size(1), s = context.size(1), dh = head_dim_;
  auto qh = q(x).view({b, n, heads_, dh}).transpose(1, 2);                                  // (B, H, N, Dh)
  auto kvh = kv(context).view({b, s, 2, heads_, dh}).permute({2, 0, 3, 1, 4}).unbind(0);   // 2 x (B, H, S, Dh)
  return ParallelRegion::apply(region.exit, out(merge_heads(attention(qh, kvh[0], kvh[1], context_mask))));
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
