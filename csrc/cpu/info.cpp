#include "pyengine/info.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

#include "pyengine/lagband.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine {

std::string build_info() {
  std::string s = "compiler=";
#if defined(__clang__)
  s += "clang " __clang_version__;
#elif defined(__GNUC__)
  s += "gcc " __VERSION__;
#else
  s += "unknown";
#endif
#ifdef _OPENMP
  s += "; openmp=" + std::to_string(_OPENMP);
#else
  s += "; openmp=none";
#endif
#if defined(__AVX512F__)
  s += "; baseline=avx512f";
#elif defined(__AVX2__)
  s += "; baseline=avx2";
#else
  s += "; baseline=generic x86-64 (multiversioned hot loops)";
#endif
  return s;
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int selfcheck() {
  // x(t) = (t, 2t): squared displacement at lag 2 is 4 + 16 = 20 for every origin.
  const int64_t n = 5, lag = 2;
  std::vector<float> x(2 * n);
  for (int64_t t = 0; t < n; ++t) { x[2 * t] = float(t); x[2 * t + 1] = float(2 * t); }
  std::vector<double> out(n, 0.0);
  lag_band<float>(x.data(), n, 2, 2, &lag, 1, out.data(), 1);
  for (int64_t t = 0; t < n - lag; ++t)
    if (std::fabs(out[t] - 20.0) > 1e-12) return 1;
  return 0;
}

}  // namespace pyengine
