// Flow-matching path, target, time sampling and loss.
#include "trainer/flow_matching.h"

#include <cmath>

#include "common/error.h"

namespace reel::trainer {

torch::Tensor sample_t(int64_t n, const FlowMatchingOptions& options, at::Generator& gen) {
  REEL_CHECK(options.t_std > 0, "t_std must be positive, got ", options.t_std);
  torch::Tensor normal = at::normal(options.t_mean, options.t_std, {n}, gen);
  return torch::sigmoid(normal);
}

torch::Tensor sample_frame_t(int64_t n, int64_t frames, double per_frame, const FlowMatchingOptions& options,
                             at::Generator& gen) {
  REEL_CHECK(per_frame >= 0 && per_frame <= 1 && frames >= 1, "per_frame must lie in [0, 1], got ", per_frame);
  torch::Tensor t = sample_t(n, options, gen).unsqueeze(1).expand({n, frames});
  if (per_frame == 0) return t.contiguous();
  torch::Tensor own = sample_t(n * frames, options, gen).view({n, frames});
  torch::Tensor pick = (at::rand({n}, gen) < per_frame).unsqueeze(1);
  return torch::where(pick, own, t);
}

torch::Tensor sample_noise(torch::IntArrayRef shape, double frame_correlation, at::Generator& gen) {
  REEL_CHECK(frame_correlation >= 0 && frame_correlation < 1, "frame_correlation must lie in [0, 1), got ",
             frame_correlation);
  torch::Tensor own = at::randn(shape, gen);
  if (frame_correlation == 0) return own;
  REEL_CHECK(shape.size() >= 4, "noise shape ", shape, " must be (..., C, F, H, W)");
  std::vector<int64_t> one_frame(shape.begin(), shape.end());
  one_frame[one_frame.size() - 3] = 1;
  torch::Tensor shared = at::randn(one_frame, gen);
  return own.mul_(std::sqrt(1 - frame_correlation)).add_(shared, std::sqrt(frame_correlation));
}

torch::Tensor broadcast_time(const torch::Tensor& t, const torch::Tensor& x) {
  const bool per_frame = t.dim() == 2 && x.dim() == 5 && t.size(1) == x.size(2);
  REEL_CHECK(t.size(0) == x.size(0) && (t.dim() == 1 || per_frame), "t must be (B) or (B, F) for x (B, C, F, H, W) = ",
             x.sizes(), ", got ", t.sizes());
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  if (per_frame) shape[2] = x.size(2);
  return t.view(shape);
}

FlowPoint flow_path(const torch::Tensor& x1, const torch::Tensor& x0, const torch::Tensor& t,
                    double sigma_min) {
  REEL_CHECK(x1.sizes() == x0.sizes(), "x1 ", x1.sizes(), " and x0 ", x0.sizes(), " differ");
  torch::Tensor tb = broadcast_time(t, x1).to(x1.dtype());
  FlowPoint p;
  p.xt = tb * x1 + (1.0 - (1.0 - sigma_min) * tb) * x0;
  p.target = x1 - (1.0 - sigma_min) * x0;
  return p;
}

FlowSpace parse_flow_space(const std::string& name) {
  if (name == "velocity") return FlowSpace::kVelocity;
  if (name == "data") return FlowSpace::kData;
  fail("flow prediction '", name, "' is unknown; use velocity or data");
}

torch::Tensor output_to_velocity(const torch::Tensor& output, const torch::Tensor& xt, const torch::Tensor& t,
                                 const FlowMatchingOptions& options) {
  if (options.prediction == FlowSpace::kVelocity) return output;
  REEL_CHECK(output.sizes() == xt.sizes(), "output ", output.sizes(), " and xt ", xt.sizes(), " differ");
  const double keep = 1.0 - options.sigma_min;
  torch::Tensor noise_fraction = (1.0 - keep * broadcast_time(t, xt).to(torch::kFloat32)).clamp_min(kMinNoiseFraction);
  return (output - keep * xt) / noise_fraction.to(output.scalar_type());
}

namespace {

// flow_loss plus weight x the MSE of the differences between consecutive frames (dim -3 of
// (B, C, F, H, W)); clips of one frame have none.
torch::Tensor with_temporal_term(const torch::Tensor& prediction, const torch::Tensor& target, double weight) {
  torch::Tensor loss = flow_loss(prediction, target);
  const int64_t frames = prediction.size(-3);
  if (weight == 0 || frames < 2) return loss;
  auto diff = [frames](const torch::Tensor& x) {
    auto x32 = x.to(torch::kFloat32);
    return x32.narrow(-3, 1, frames - 1) - x32.narrow(-3, 0, frames - 1);
  };
  return loss + weight * torch::mse_loss(diff(prediction), diff(target));
}

}  // namespace

torch::Tensor training_loss(const torch::Tensor& output, const FlowPoint& p, const torch::Tensor& x1,
                            const torch::Tensor& t, const FlowMatchingOptions& options) {
  if (options.loss == FlowSpace::kData) {
    REEL_CHECK(options.prediction == FlowSpace::kData, "a data-space loss needs a data prediction");
    return with_temporal_term(output, x1, options.temporal_weight);
  }
  return with_temporal_term(output_to_velocity(output, p.xt, t, options), p.target, options.temporal_weight);
}

torch::Tensor flow_loss(const torch::Tensor& prediction, const torch::Tensor& target) {
  return torch::mse_loss(prediction.to(torch::kFloat32), target.to(torch::kFloat32));
}

torch::Tensor flow_loss_per_sample(const torch::Tensor& prediction, const torch::Tensor& target) {
  torch::Tensor diff = prediction.to(torch::kFloat32) - target.to(torch::kFloat32);
  return diff.pow(2).flatten(1).mean(1);
}

}  // namespace reel::trainer
