// Tensor-parallel weight slicing (see tensor_parallel.h).
#include "parallel/tensor_parallel.h"

#include <vector>

#include "common/error.h"

namespace reel::parallel {

torch::Tensor column_shard(const torch::Tensor& w, int64_t groups, const Communicator& tp) {
  REEL_CHECK(w.dim() >= 1 && groups >= 1 && w.size(0) % (groups * tp.size()) == 0, "column_shard: ", w.size(0),
             " rows in ", groups, " block(s) do not split over the ", tp.size(), " ranks of group '", tp.name(), "'");
  std::vector<torch::Tensor> mine;
  for (const auto& block : w.chunk(groups, 0)) mine.push_back(block.chunk(tp.size(), 0)[tp.rank()]);
  return torch::cat(mine, 0).contiguous();
}

torch::Tensor row_shard(const torch::Tensor& w, const Communicator& tp) {
  REEL_CHECK(w.dim() == 2 && w.size(1) % tp.size() == 0, "row_shard: ", w.size(1), " columns do not split over the ",
             tp.size(), " ranks of group '", tp.name(), "'");
  return w.chunk(tp.size(), 1)[tp.rank()].contiguous();
}

torch::Tensor gather_column_shards(const torch::Tensor& local, int64_t groups, Communicator& tp) {
  torch::Tensor all = torch::empty({tp.size() * local.numel()}, local.options());
  tp.all_gather(all, local.contiguous());
  std::vector<int64_t> shape = local.sizes().vec();
  shape.insert(shape.begin(), tp.size());
  // all: (rank, groups, rows per part, ...) -> (groups, rank, rows per part, ...)
  std::vector<int64_t> split = {tp.size(), groups, local.size(0) / groups};
  for (int64_t i = 1; i < local.dim(); ++i) split.push_back(local.size(i));
  std::vector<int64_t> full = local.sizes().vec();
  full[0] *= tp.size();
  return all.view(split).transpose(0, 1).reshape(full);
}

torch::Tensor gather_row_shards(const torch::Tensor& local, Communicator& tp) {
  torch::Tensor all = torch::empty({tp.size() * local.numel()}, local.options());
  tp.all_gather(all, local.contiguous());
  // (rank, out, in_part) -> (out, rank, in_part) -> (out, in)
  return all.view({tp.size(), local.size(0), local.size(1)}).transpose(0, 1).reshape({local.size(0), -1});
}

}  // namespace reel::parallel
