// Fused RMSNorm + adaLN modulation on the CPU (see norm_modulate.h).
#include "kernels/norm_modulate.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/modulate.h"

namespace reel::kernels {
namespace {

// Rows handed to one thread at a time: enough work to amortize the scheduling.
constexpr int64_t kRowGrain = 16;

void check_shapes(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  bool ok = x.dim() == 3 && shift.sizes() == scale.sizes() && shift.numel() == x.size(0) * x.size(2) &&
            shift.size(0) == x.size(0) && shift.size(-1) == x.size(2) && (shift.dim() == 2 || shift.dim() == 3);
  if (!ok) {
    fail("norm_modulate: x must be (B, N, D) with shift and scale (B, D) or (B, 1, D); got x ", x.sizes(),
         ", shift ", shift.sizes(), ", scale ", scale.sizes());
  }
}

class NormModulateFunction : public torch::autograd::Function<NormModulateFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& shift_in, const torch::Tensor& scale_in, double eps) {
    const int64_t b = x_in.size(0), n = x_in.size(1), d = x_in.size(2);
    auto x = x_in.contiguous();
    auto shift = shift_in.reshape({b, d}).contiguous(), scale = scale_in.reshape({b, d}).contiguous();
    auto y = torch::empty_like(x);
    auto rstd = torch::empty({b, n}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* shp = shift.data_ptr<float>();
    const float* scp = scale.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = rstd.data_ptr<float>();
    const float feps = static_cast<float>(eps);
    at::parallel_for(0, b * n, kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const float* xr = xp + row * d;
        const float* sh = shp + (row / n) * d;
        const float* sc = scp + (row / n) * d;
        float* yr = yp + row * d;
        float ss = 0;
        for (int64_t j = 0; j < d; ++j) ss += xr[j] * xr[j];
        const float r = 1.0f / std::sqrt(ss / static_cast<float>(d) + feps);
        rp[row] = r;
        for (int64_t j = 0; j < d; ++j) yr[j] = xr[j] * r * (1.0f + sc[j]) + sh[j];
      }
    });
    ctx->save_for_backward({x, scale, rstd});
    ctx->saved_data["shift_shape"] = shift_in.sizes();
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &scale = saved[1], &rstd = saved[2];
    auto dy = grad_outputs[0].contiguous();
    const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
    auto dx = torch::empty_like(x);
    auto dshift = torch::zeros({b, d}, x.options()), dscale = torch::zeros({b, d}, x.options());
    const float *xp = x.data_ptr<float>(), *scp = scale.data_ptr<float>(), *rp = rstd.data_ptr<float>();
    const float* dyp = dy.data_ptr<float>();
    float *dxp = dx.data_ptr<float>(), *dshp = dshift.data_ptr<float>(), *dscp = dscale.data_ptr<float>();
    const float inv_d = 1.0f / static_cast<float>(d);
    // Parallel over samples so that each thread owns its rows of dshift/dscale (no atomics);
    // inside a sample, one pass over its tokens.
    at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> dn(d);
      for (int64_t s = begin; s < end; ++s) {
        const float* sc = scp + s * d;
        float* dsh = dshp + s * d;
        float* dsc = dscp + s * d;
        for (int64_t t = 0; t < n; ++t) {
          const int64_t row = s * n + t;
          const float* xr = xp + row * d;
          const float* g = dyp + row * d;
          float* out = dxp + row * d;
          const float r = rp[row];
          float dot = 0;  // sum_j dn_j * xhat_j
          for (int64_t j = 0; j < d; ++j) {
            const float xhat = xr[j] * r;
            dsh[j] += g[j];
            dsc[j] += g[j] * xhat;
            dn[j] = g[j] * (1.0f + sc[j]);
            dot += dn[j] * xhat;
          }
          dot *= inv_d;
          for (int64_t j = 0; j < d; ++j) out[j] = r * (dn[j] - xr[j] * r * dot);
        }
      }
    });
    auto shape = ctx->saved_data["shift_shape"].toIntVector();
    return {dx, dshift.view(shape), dscale.view(shape), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor norm_modulate_reference(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                                      double eps) {
  check_shapes(x, shift, scale);
  const int64_t b = x.size(0), d = x.size(2);
  auto normed = x * torch::rsqrt(x.square().mean(-1, /*keepdim=*/true) + eps);
  return modulate_reference(normed, shift.reshape({b, d}), scale.reshape({b, d}));
}

torch::Tensor norm_modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                            double eps) {
  check_shapes(x, shift, scale);
  const bool fused = x.is_cpu() && x.scalar_type() == torch::kFloat32 && shift.scalar_type() == torch::kFloat32 &&
                     scale.scalar_type() == torch::kFloat32;
  if (!fused) return norm_modulate_reference(x, shift, scale, eps);
  return NormModulateFunction::apply(x, shift, scale, eps);
}

}  // namespace reel::kernels
