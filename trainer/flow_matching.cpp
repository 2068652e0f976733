// Flow-matching path, target, time sampling and loss.
#include "trainer/flow_matching.h"

#include "common/error.h"

namespace reel::trainer {

torch::Tensor sample_t(int64_t n, const FlowMatchingOptions& options, at::Generator& gen) {
  REEL_CHECK(options.t_std > 0, "t_std must be positive, got ", options.t_std);
  torch::Tensor normal = at::normal(options.t_mean, options.t_std, {n}, gen);
  return torch::sigmoid(normal);
}

FlowPoint flow_path(const torch::Tensor& x1, const torch::Tensor& x0, const torch::Tensor& t,
                    double sigma_min) {
  REEL_CHECK(x1.sizes() == x0.sizes(), "x1 ", x1.sizes(), " and x0 ", x0.sizes(), " differ");
  REEL_CHECK(t.dim() == 1 && t.size(0) == x1.size(0), "t must be (B) with B = ", x1.size(0),
             ", got ", t.sizes());
  std::vector<int64_t> shape(x1.dim(), 1);
  shape[0] = x1.size(0);
  torch::Tensor tb = t.to(x1.dtype()).view(shape);
  FlowPoint p;
  p.xt = tb * x1 + (1.0 - (1.0 - sigma_min) * tb) * x0;
  p.target = x1 - (1.0 - sigma_min) * x0;
  return p;
}

torch::Tensor flow_loss(const torch::Tensor& prediction, const torch::Tensor& target) {
  return torch::mse_loss(prediction.to(torch::kFloat32), target.to(torch::kFloat32));
}

torch::Tensor flow_loss_per_sample(const torch::Tensor& prediction, const torch::Tensor& target) {
  torch::Tensor diff = prediction.to(torch::kFloat32) - target.to(torch::kFloat32);
  return diff.pow(2).flatten(1).mean(1);
}

}  // namespace reel::trainer
