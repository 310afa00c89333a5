#include "pyengine/tail_stable.hpp"

#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {

template <typename T>
void stable_loglik(const T* x, int64_t n, double loc, double scale, const StableRow& row, double* sums,
                   double* logp, int n_threads) {
  require(n >= 0, "stable_loglik: negative size");
  require(scale > 0.0, "stable_loglik: scale must be > 0");
  require(row.n_u >= 3 && row.h > 0.0 && row.n_c >= 0, "stable_loglik: malformed density row");
  require(row.x_tail * 1.0 / (1.0 + row.x_tail) <= row.h * static_cast<double>(row.n_u) * (1.0 + 1e-12),
          "stable_loglik: the table does not reach x_tail");
  const double inv_scale = 1.0 / scale, log_scale = std::log(scale);
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#ifdef _OPENMP
  const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
#endif
  // Small inputs stay on one thread: waking a team costs more than the work.
#pragma omp parallel for schedule(static) reduction(+ : s0, s1, s2, s3) num_threads(threads) if (n >= 32768)
  for (int64_t i = 0; i < n; ++i) {
    const double z = (static_cast<double>(x[i]) - loc) * inv_scale;
    const double a = std::fabs(z);
    const LogDensity d = stable_log_density(a, row);
    const double lp = d.value - log_scale;
    s0 += lp;
    s1 += d.d_alpha;
    s2 -= (z < 0 ? -d.d_a : d.d_a) * inv_scale;
    s3 -= (d.d_a * a + 1.0) * inv_scale;
    if (logp) logp[i] = lp;
  }
  sums[0] += s0;
  sums[1] += s1;
  sums[2] += s2;
  sums[3] += s3;
}

template void stable_loglik<float>(const float*, int64_t, double, double, const StableRow&, double*, double*, int);
template void stable_loglik<double>(const double*, int64_t, double, double, const StableRow&, double*, double*,
                                    int);

}  // namespace pyengine
