// Collectives as autograd functions (see collectives.h).
#include "parallel/collectives.h"

#include <vector>

#include "common/error.h"
#include "parallel/autograd_group.h"

namespace reel::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using detail::group_of;
using detail::keep_group;

int64_t checked_dim(const torch::Tensor& x, int64_t dim) {
  REEL_CHECK(x.dim() > 0, "a collective along a dimension needs a tensor with one, got a scalar");
  int64_t d = dim < 0 ? dim + x.dim() : dim;
  REEL_CHECK(d >= 0 && d < x.dim(), "dimension ", dim, " is out of range for a tensor of shape ", x.sizes());
  return d;
}

// Plain (non-autograd) building blocks.
torch::Tensor summed(const torch::Tensor& x, Communicator& g) {
  torch::Tensor y = x.contiguous().clone();
  if (g.size() > 1) g.all_reduce(y, ReduceOp::kSum);
  return y;
}

torch::Tensor gathered(const torch::Tensor& x, int64_t dim, Communicator& g) {
  if (g.size() == 1) return x.clone();
  torch::Tensor in = x.contiguous();
  std::vector<int64_t> shape = {g.size()};
  for (int64_t s : in.sizes()) shape.push_back(s);
  torch::Tensor buffer = torch::empty(shape, in.options());
  g.all_gather(buffer, in);
  return buffer.movedim(0, dim).flatten(dim, dim + 1);  // (..., size, n_dim, ...) -> (..., size * n_dim, ...)
}

// x split along dim into g.size() parts, stacked in front: (size, part shape...), contiguous.
torch::Tensor parts_in_front(const torch::Tensor& x, int64_t dim, Communicator& g) {
  REEL_CHECK(x.size(dim) % g.size() == 0, "dimension ", dim, " of a tensor of shape ", x.sizes(),
             " does not split over the ", g.size(), " ranks of group '", g.name(), "'");
  std::vector<int64_t> shape = x.sizes().vec();
  shape[dim] /= g.size();
  shape.insert(shape.begin() + dim, g.size());
  return x.reshape(shape).movedim(dim, 0).contiguous();
}

torch::Tensor reduce_scattered(const torch::Tensor& x, int64_t dim, Communicator& g) {
  torch::Tensor in = parts_in_front(x, dim, g);
  if (g.size() == 1) return in[0].clone();
  torch::Tensor out = torch::empty(in.sizes().slice(1), in.options());
  g.reduce_scatter(out, in, ReduceOp::kSum);
  return out;
}

torch::Tensor own_part(const torch::Tensor& x, int64_t dim, Communicator& g) {
  REEL_CHECK(x.size(dim) % g.size() == 0, "dimension ", dim, " of a tensor of shape ", x.sizes(),
             " does not split over the ", g.size(), " ranks of group '", g.name(), "'");
  return x.chunk(g.size(), dim)[g.rank()].contiguous();
}

torch::Tensor exchanged(const torch::Tensor& x, int64_t scatter_dim, int64_t gather_dim, Communicator& g) {
  torch::Tensor in = parts_in_front(x, scatter_dim, g);  // part j goes to rank j
  torch::Tensor out = torch::empty_like(in);
  if (g.size() > 1) {
    g.all_to_all(out, in);
  } else {
    out.copy_(in);
  }
  // out[i] came from rank i: concatenate along gather_dim in rank order.
  return out.movedim(0, gather_dim).flatten(gather_dim, gather_dim + 1);
}

class CopyToGroup : public torch::autograd::Function<CopyToGroup> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* g) {
    keep_group(ctx, *g);
    return x.view_as(x).clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list go) {
    return {summed(go[0], group_of(ctx)), torch::Tensor()};
  }
};

class ReduceFromGroup : public torch::autograd::Function<ReduceFromGroup> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* g) {
    keep_group(ctx, *g);
    return summed(x, *g);
  }
  static variable_list backward(AutogradContext*, variable_list go) { return {go[0], torch::Tensor()}; }
};

// A collective along one dimension: Forward in forward, its adjoint Backward in backward.
using DimOp = torch::Tensor (*)(const torch::Tensor&, int64_t, Communicator&);
template <DimOp Forward, DimOp Backward>
class AlongDim : public torch::autograd::Function<AlongDim<Forward, Backward>> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t dim, Communicator* g) {
    keep_group(ctx, *g);
    ctx->saved_data["dim"] = dim;
    return Forward(x, dim, *g);
  }
  static variable_list backward(AutogradContext* ctx, variable_list go) {
    return {Backward(go[0], ctx->saved_data["dim"].toInt(), group_of(ctx)), torch::Tensor(), torch::Tensor()};
  }
};

using GatherAlong = AlongDim<gathered, reduce_scattered>;
using ReduceScatterAlong = AlongDim<reduce_scattered, gathered>;
using SplitAlong = AlongDim<own_part, gathered>;
using GatherWholeAlong = AlongDim<gathered, own_part>;

class AllToAllAlong : public torch::autograd::Function<AllToAllAlong> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t scatter_dim, int64_t gather_dim,
                               Communicator* g) {
    keep_group(ctx, *g);
    ctx->saved_data["scatter"] = scatter_dim;
    ctx->saved_data["gather"] = gather_dim;
    return exchanged(x, scatter_dim, gather_dim, *g);
  }
  static variable_list backward(AutogradContext* ctx, variable_list go) {
    torch::Tensor gx = exchanged(go[0], ctx->saved_data["gather"].toInt(), ctx->saved_data["scatter"].toInt(),
                                 group_of(ctx));
    return {gx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor copy_to_group(const torch::Tensor& x, Communicator& group) { return CopyToGroup::apply(x, &group); }

torch::Tensor reduce_from_group(const torch::Tensor& x, Communicator& group) {
  return ReduceFromGroup::apply(x, &group);
}

torch::Tensor gather_along(const torch::Tensor& x, int64_t dim, Communicator& group) {
  return GatherAlong::apply(x, checked_dim(x, dim), &group);
}

torch::Tensor gather_whole_along(const torch::Tensor& x, int64_t dim, Communicator& group) {
  return GatherWholeAlong::apply(x, checked_dim(x, dim), &group);
}

torch::Tensor reduce_scatter_along(const torch::Tensor& x, int64_t dim, Communicator& group) {
  return ReduceScatterAlong::apply(x, checked_dim(x, dim), &group);
}

torch::Tensor split_along(const torch::Tensor& x, int64_t dim, Communicator& group) {
  return SplitAlong::apply(x, checked_dim(x, dim), &group);
}

torch::Tensor all_to_all_along(const torch::Tensor& x, int64_t scatter_dim, int64_t gather_dim, Communicator& group) {
  const int64_t s = checked_dim(x, scatter_dim), g = checked_dim(x, gather_dim);
  REEL_CHECK(s != g, "all_to_all_along: scatter and gather dimensions must differ, both are ", s);
  return AllToAllAlong::apply(x, s, g, &group);
}

}  // namespace reel::parallel
