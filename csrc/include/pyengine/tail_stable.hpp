// Symmetric α-stable log-likelihood from a per-α density table and the tail series.
#pragma once
#include <cmath>
#include <cstdint>

#include "pyengine/common.hpp"

namespace pyengine {

// The standard SαS density (characteristic function exp(-|t|^α)) at one α, prepared by the
// Python layer (pyengine.heavytail.stable) from the shipped table:
//   |x| < x_tail:  f = φ2(x) + G(u) / (1 + |x|)^3,  u = |x| / (1 + |x|), G tabulated on
//                  u_j = j h, j = 0..n_u, read with 4-point Lagrange interpolation;
//   |x| >= x_tail: f = φ2(x) + |x|^-1 Σ_{k=1..n_c} c_k |x|^(-kα)  (Bergström's series);
// φ2 is the N(0, 2) density (f at α = 2). g_da and c_da are the α-derivatives of g and c.
struct StableRow {
  const double* g;
  const double* g_da;
  int64_t n_u;
  double h;
  double x_tail;
  const double* c;
  const double* c_da;
  int64_t n_c;
  double alpha;
};

// log f at a = |x| with its derivatives in a and in α.
struct LogDensity {
  double value, d_a, d_alpha;
};

PE_HD inline LogDensity stable_log_density(double a, const StableRow& r) {
  const double inv_sqrt_4pi = 0.28209479177387814;
  const double phi = inv_sqrt_4pi * exp(-0.25 * a * a);
  const double dphi = -0.5 * a * phi;
  double f, df_da, df_dalpha;
  if (a < r.x_tail) {
    const double s = a / (1.0 + a) / r.h;
    int64_t j0 = static_cast<int64_t>(s) - 1;
    j0 = j0 < 0 ? 0 : (j0 > r.n_u - 3 ? r.n_u - 3 : j0);
    const double p = s - static_cast<double>(j0);  // position among nodes j0 .. j0+3, in [0, 3]
    const double p0 = p, p1 = p - 1.0, p2 = p - 2.0, p3 = p - 3.0;
    const double w0 = -p1 * p2 * p3 / 6.0, w1 = p0 * p2 * p3 / 2.0, w2 = -p0 * p1 * p3 / 2.0,
                 w3 = p0 * p1 * p2 / 6.0;
    const double d0 = -(p2 * p3 + p1 * p3 + p1 * p2) / 6.0, d1 = (p2 * p3 + p0 * p3 + p0 * p2) / 2.0,
                 d2 = -(p1 * p3 + p0 * p3 + p0 * p1) / 2.0, d3 = (p1 * p2 + p0 * p2 + p0 * p1) / 6.0;
    const double* g = r.g + j0;
    const double* ga = r.g_da + j0;
    const double G = w0 * g[0] + w1 * g[1] + w2 * g[2] + w3 * g[3];
    const double dG_ds = d0 * g[0] + d1 * g[1] + d2 * g[2] + d3 * g[3];
    const double Ga = w0 * ga[0] + w1 * ga[1] + w2 * ga[2] + w3 * ga[3];
    const double inv1a = 1.0 / (1.0 + a);
    const double q = inv1a * inv1a * inv1a;
    f = phi + G * q;
    df_da = dphi + dG_ds / r.h * inv1a * inv1a * q - 3.0 * G * q * inv1a;
    df_dalpha = Ga * q;
  } else {
    const double la = log(a);
    const double w = exp(-r.alpha * la);
    double P = 0.0, P1 = 0.0, Q = 0.0;
    for (int64_t k = r.n_c; k >= 1; --k) {
      P = (P + r.c[k - 1]) * w;
      P1 = (P1 + static_cast<double>(k) * r.c[k - 1]) * w;
      Q = (Q + r.c_da[k - 1]) * w;
    }
    f = phi + P / a;
    df_da = dphi - (P + r.alpha * P1) / (a * a);
    df_dalpha = (Q - la * P1) / a;
    if (!(f > 1e-280)) {
      // Far out with α near 2, f leaves the double range: keep the larger term, in logs.
      const double log_phi = -1.2655121234846454 - 0.25 * a * a;  // log(1 / (2 sqrt(pi)))
      if (P > 0.0 && log(P / a) > log_phi) return {log(P / a), -(P + r.alpha * P1) / (a * P), (Q - la * P1) / P};
      return {log_phi, -0.5 * a, 0.0};
    }
  }
  return {log(f), df_da / f, df_dalpha / f};
}

// Sums over the n samples x of the SαS log-likelihood at (α, loc, scale) and of its
// derivatives: sums[0] += Σ log p, sums[1] += Σ ∂/∂α, sums[2] += Σ ∂/∂loc, sums[3] += Σ ∂/∂scale,
// where log p(x) = log f(|x - loc| / scale) - log scale. When logp is not null it receives
// log p of every sample. The samples must be finite.
template <typename T>
void stable_loglik(const T* x, int64_t n, double loc, double scale, const StableRow& row, double* sums,
                   double* logp, int n_threads);

}  // namespace pyengine
