// Data parallelism over replicas (see data_parallel.h).
#include "parallel/data_parallel.h"

#include <cmath>

#include "common/error.h"

namespace reel::parallel {

int64_t per_rank_batch(int64_t batch, int size) {
  if (batch % size != 0)
    fail("data.batch_size = ", batch, " does not split over ", size, " data-parallel ranks; make it a multiple of ",
         size);
  return batch / size;
}

void DataParallel::broadcast_parameters(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    REEL_CHECK(p.is_contiguous(), "broadcast_parameters: parameter of shape ", p.sizes(), " is not contiguous");
    group_.broadcast(p, 0);
  }
}

double DataParallel::average_gradients(const std::vector<torch::Tensor>& params, double loss) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  flat.reserve(params.size() + 1);
  for (const auto& p : params) {
    torch::Tensor g = p.grad();
    flat.push_back(g.defined() ? g.reshape({-1}).to(torch::kFloat) : torch::zeros({p.numel()}, torch::kFloat));
  }
  flat.push_back(torch::tensor({static_cast<float>(loss)}));  // the last element
  torch::Tensor buffer = torch::cat(flat);
  group_.all_reduce(buffer, ReduceOp::kAvg);
  int64_t offset = 0;
  for (auto& p : params) {
    const int64_t n = p.numel();
    torch::Tensor mean = buffer.narrow(0, offset, n).view(p.sizes());
    if (p.grad().defined()) {
      p.mutable_grad().copy_(mean);
    } else {
      p.mutable_grad() = mean.to(p.scalar_type()).clone();
    }
    offset += n;
  }
  return buffer[offset].item<double>();
}

torch::Tensor grad_square_sum(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>* weights) {
  torch::NoGradGuard no_grad;
  REEL_CHECK(weights == nullptr || weights->size() == params.size(), "grad_square_sum: ", weights->size(),
             " weights for ", params.size(), " tensors");
  torch::Tensor sq = torch::zeros({1}, torch::kFloat64);
  for (size_t i = 0; i < params.size(); ++i) {
    const torch::Tensor& g = params[i].grad();
    if (!g.defined()) continue;
    torch::Tensor g2 = g.to(torch::kFloat64).pow(2);
    sq += weights ? (g2 * (*weights)[i].to(torch::kFloat64)).sum() : g2.sum();
  }
  return sq;
}

double clip_to_norm(const std::vector<torch::Tensor>& params, const torch::Tensor& square_sum, double max_norm) {
  torch::NoGradGuard no_grad;
  const double norm = std::sqrt(square_sum.item<double>());
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1) {
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(coef);
    }
  }
  return norm;
}

}  // namespace reel::parallel
