// Multi-head attention (see attention.h).
#include "model/attention.h"

#include <ATen/Parallel.h>

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

// Runs body(begin, end, chunk) over the B*H attention slices. On the CPU the slices are spread
// over the intra-op threads and processed one at a time (chunk = 1): each thread reuses one
// (N, Nk) scratch buffer that stays in cache, and the GEMMs run single-threaded inside ONE
// parallel region instead of opening a region per GEMM as bmm does. Elsewhere: one call over
// all slices (batched kernels).
template <typename Body>
void for_slices(const torch::Tensor& like, int64_t slices, const Body& body) {
  if (like.is_cpu()) {
    at::parallel_for(0, slices, 1, [&](int64_t begin, int64_t end) { body(begin, end, 1); });
  } else {
    body(0, slices, slices);
  }
}

// softmax(q k^T * scale) v, computed slice by slice like FlashAttention: the (N, Nk) probabilities
// are never stored. Forward keeps per row the max score and 1/sum(exp); backward recomputes P
// from them and uses rowsum(dP * P) = rowsum(dO * O), so neither pass allocates anything of size
// (B, H, N, Nk) (large allocations are slow on CPU: fresh pages fault in on every step), and
// LibTorch's slow CPU softmax backward is avoided. Not twice differentiable.
class AttentionFunction : public torch::autograd::Function<AttentionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const KeyMask& key_mask) {
    int64_t b = q.size(0), h = q.size(1), n = q.size(2), m = k.size(2), dh = q.size(3);
    double scale = 1.0 / std::sqrt(static_cast<double>(dh));
    auto q3 = q.reshape({b * h, n, dh}) * scale;  // (BH, N, Dh), contiguous, pre-scaled
    auto k3 = k.reshape({b * h, m, dh});           // (BH, Nk, Dh)
    auto v3 = v.reshape({b * h, m, dh});           // (BH, Nk, Dh)
    torch::Tensor masked;                          // bool (BH, 1, Nk), true = masked out
    if (key_mask.mask.defined()) masked = key_mask.mask.logical_not().repeat_interleave(h, 0).unsqueeze(1);
    auto out = torch::empty({b, h, n, dh}, q.options());  // returned whole, not as a view
    auto out3 = out.view({b * h, n, dh});
    auto row_max = torch::empty({b * h, n, 1}, q.options());
    auto row_inv_sum = torch::empty({b * h, n, 1}, q.options());
    double fill = lowest_finite(q.scalar_type());
    const int64_t last_dim[1] = {-1};

    for_slices(q, b * h, [&](int64_t begin, int64_t end, int64_t chunk) {
      auto scores = torch::empty({chunk, n, m}, q.options());
      for (int64_t s = begin; s < end; s += chunk) {
        auto qs = q3.narrow(0, s, chunk), ks = k3.narrow(0, s, chunk), vs = v3.narrow(0, s, chunk);
        torch::bmm_out(scores, qs, ks.transpose(1, 2));
        if (masked.defined()) scores.masked_fill_(masked.narrow(0, s, chunk), fill);
        auto mx = row_max.narrow(0, s, chunk), inv = row_inv_sum.narrow(0, s, chunk);
        torch::amax_out(mx, scores, at::IntArrayRef(last_dim), /*keepdim=*/true);
        scores.sub_(mx).exp_();
        torch::sum_out(inv, scores, at::IntArrayRef(last_dim), /*keepdim=*/true);
        inv.reciprocal_();
        auto os = out3.narrow(0, s, chunk);
        torch::bmm_out(os, scores, vs);
        os.mul_(inv);
      }
    });
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
    torch::Tensor masked;
    if (ctx->saved_data["has_mask"].toBool()) masked = ctx->saved_data["masked"].toTensor();
    int64_t bh = q3.size(0), n = q3.size(1), dh = q3.size(2), m = k3.size(1);
    auto out3 = out.view({bh, n, dh});
    auto go = grad_outputs[0].reshape({bh, n, dh});  // dO
    auto dq = torch::empty_like(q3), dk = torch::empty_like(k3), dv = torch::empty_like(v3);
    double fill = lowest_finite(q3.scalar_type());

    for_slices(q3, bh, [&](int64_t begin, int64_t end, int64_t chunk) {
      auto p = torch::empty({chunk, n, m}, q3.options());
      auto ds = torch::empty({chunk, n, m}, q3.options());
      for (int64_t s = begin; s < end; s += chunk) {
        auto qs = q3.narrow(0, s, chunk), ks = k3.narrow(0, s, chunk), vs = v3.narrow(0, s, chunk);
        auto gos = go.narrow(0, s, chunk);
        torch::bmm_out(p, qs, ks.transpose(1, 2));
        if (masked.defined()) p.masked_fill_(masked.narrow(0, s, chunk), fill);
        p.sub_(row_max.narrow(0, s, chunk)).exp_().mul_(row_inv_sum.narrow(0, s, chunk));  // P
        auto dvs = dv.narrow(0, s, chunk), dqs = dq.narrow(0, s, chunk), dks = dk.narrow(0, s, chunk);
        torch::bmm_out(dvs, p.transpose(1, 2), gos);
        torch::bmm_out(ds, gos, vs.transpose(1, 2));                                    // dP
        ds.sub_((gos * out3.narrow(0, s, chunk)).sum(-1, /*keepdim=*/true)).mul_(p);   // dS = P (dP - rowsum(dO O))
        torch::bmm_out(dqs, ds, ks);
        dqs.mul_(scale);
        torch::bmm_out(dks, ds.transpose(1, 2), qs);  // qs is already scaled
      }
    });
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
