// The temporal autoencoder's losses and metrics (see tae_loss.h).
#include "trainer/tae_loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace reel::trainer {
namespace F = torch::nn::functional;

torch::Tensor gradient_loss(const torch::Tensor& x, const torch::Tensor& recon) {
  torch::Tensor loss = torch::zeros({}, x.options());
  int terms = 0;
  for (int64_t dim : {2, 3, 4}) {
    if (x.size(dim) < 2) continue;
    const int64_t n = x.size(dim) - 1;
    auto diff = [&](const torch::Tensor& t) { return t.narrow(dim, 1, n) - t.narrow(dim, 0, n); };
    loss = loss + (diff(x) - diff(recon)).abs().mean();
    ++terms;
  }
  return terms > 0 ? loss / terms : loss;
}

torch::Tensor kl_loss(const torch::Tensor& mean, const torch::Tensor& logvar) {
  return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean();
}

torch::Tensor outlier_penalty(const torch::Tensor& z, double r) {
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < z.dim(); ++d) dims.push_back(d);
  torch::Tensor mu = z.mean(dims, /*keepdim=*/true);
  torch::Tensor sigma = z.std(dims, /*unbiased=*/false, /*keepdim=*/true);
  return torch::relu((z - mu).abs() - r * sigma).mean();
}

torch::Tensor psnr(const torch::Tensor& x, const torch::Tensor& recon) {
  torch::Tensor a = (x.to(torch::kFloat64) + 1) * 127.5, b = (recon.to(torch::kFloat64) + 1) * 127.5;
  torch::Tensor mse = (a - b).pow(2).flatten(1).mean(1);
  return 10 * torch::log10(255.0 * 255.0 / mse);
}

torch::Tensor ssim(const torch::Tensor& x, const torch::Tensor& recon) {
  const int64_t B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  const int64_t size = std::min<int64_t>({11, H, W});
  // A normalised 1-D Gaussian, applied along h then w to every (sample, frame, channel) image.
  std::vector<double> g(size);
  double total = 0;
  for (int64_t i = 0; i < size; ++i) total += g[i] = std::exp(-std::pow(i - (size - 1) / 2.0, 2) / (2 * 1.5 * 1.5));
  for (double& v : g) v /= total;
  torch::Tensor k = torch::tensor(g, torch::kFloat64);
  torch::Tensor kh = k.view({1, 1, size, 1}), kw = k.view({1, 1, 1, size});
  auto images = [&](const torch::Tensor& t) {
    return ((t.to(torch::kFloat64) + 1) / 2).permute({0, 2, 1, 3, 4}).reshape({B * T * C, 1, H, W});
  };
  auto blur = [&](const torch::Tensor& t) { return F::conv2d(F::conv2d(t, kh), kw); };
  torch::Tensor a = images(x), b = images(recon);
  torch::Tensor mu_a = blur(a), mu_b = blur(b);
  torch::Tensor var_a = blur(a * a) - mu_a * mu_a, var_b = blur(b * b) - mu_b * mu_b, cov = blur(a * b) - mu_a * mu_b;
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  torch::Tensor map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2));
  return map.reshape({B, -1}).mean(1);
}

}  // namespace reel::trainer
