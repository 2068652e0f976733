// Context-parallel attention (see context_parallel.h).
#include "parallel/context_parallel.h"

#include <cmath>
#include <vector>

#include "common/error.h"
#include "parallel/autograd_group.h"
#include "parallel/collectives.h"

namespace reel::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// x to rank (r + step) % n, from rank (r - step) % n.
torch::Tensor shifted(const torch::Tensor& x, int step, Communicator& g) {
  const int n = g.size(), r = g.rank();
  torch::Tensor in = x.contiguous();
  torch::Tensor out = torch::empty_like(in);
  if (n == 1) return in.clone();
  WorkHandle recv = g.recv_async(out, ((r - step) % n + n) % n, /*tag=*/7);
  WorkHandle send = g.send_async(in, ((r + step) % n + n) % n, /*tag=*/7);
  send->wait();
  recv->wait();
  return out;
}

class RingShift : public torch::autograd::Function<RingShift> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* g) {
    detail::keep_group(ctx, *g);
    return shifted(x, 1, *g);
  }
  static variable_list backward(AutogradContext* ctx, variable_list go) {
    return {shifted(go[0], -1, detail::group_of(ctx)), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor part_along(const torch::Tensor& x, int64_t dim, const Communicator& cp) {
  const int64_t len = x.size(dim);
  REEL_CHECK(len % cp.size() == 0, "context parallel: dimension ", dim, " of ", x.sizes(), " does not split over the ",
             cp.size(), " ranks of group '", cp.name(), "'");
  const int64_t part = len / cp.size();
  return x.narrow(dim, cp.rank() * part, part);
}

torch::Tensor ring_shift(const torch::Tensor& x, Communicator& cp) { return RingShift::apply(x, &cp); }

torch::Tensor allgather_kv_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     Communicator& cp, const AttentionFn& attend) {
  return attend(q, gather_along(k, 2, cp), gather_along(v, 2, cp));
}

torch::Tensor ulysses_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                Communicator& cp, const AttentionFn& attend) {
  REEL_CHECK(q.size(1) % cp.size() == 0, "ulysses: ", q.size(1), " heads do not split over ", cp.size(), " ranks");
  // (B, H, N / cp, Dh) -> (B, H / cp, N, Dh): heads scattered, sequence gathered.
  auto whole = [&](const torch::Tensor& x) { return all_to_all_along(x, 1, 2, cp); };
  torch::Tensor o = attend(whole(q), whole(k), whole(v));
  return all_to_all_along(o, 2, 1, cp);  // back to (B, H, N / cp, Dh)
}

torch::Tensor ring_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             Communicator& cp) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  const torch::Tensor qs = q * scale;
  std::vector<torch::Tensor> outs, lses;
  torch::Tensor kb = k, vb = v;
  for (int step = 0; step < cp.size(); ++step) {
    if (step > 0) {  // the previous rank's K/V part: after `step` shifts, that of rank r - step
      kb = ring_shift(kb, cp);
      vb = ring_shift(vb, cp);
    }
    torch::Tensor scores = torch::matmul(qs, kb.transpose(-1, -2));  // (B, H, Nq, Nk)
    lses.push_back(torch::logsumexp(scores, -1, /*keepdim=*/true));
    outs.push_back(torch::matmul(torch::softmax(scores, -1), vb));
  }
  // softmax over every key = sum over parts of exp(lse_part - lse_all) * softmax over the part
  torch::Tensor lse = torch::logsumexp(torch::stack(lses), 0);
  torch::Tensor out = torch::zeros_like(outs[0]);
  for (size_t i = 0; i < outs.size(); ++i) out = out + torch::exp(lses[i] - lse) * outs[i];
  return out;
}

AttentionFn context_parallel_attention(const std::string& mode, Communicator& cp, AttentionFn attend) {
  using T = const torch::Tensor&;
  if (mode == "allgather_kv") return [&cp, attend](T q, T k, T v) { return allgather_kv_attention(q, k, v, cp, attend); };
  if (mode == "ulysses") return [&cp, attend](T q, T k, T v) { return ulysses_attention(q, k, v, cp, attend); };
  if (mode == "ring") return [&cp](T q, T k, T v) { return ring_attention(q, k, v, cp); };
  fail("parallel.cp_mode = '", mode, "' is not one of allgather_kv, ulysses, ring");
}

}  // namespace reel::parallel
