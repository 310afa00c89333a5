// Shared helpers for pyengine kernels: no Python here.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

// Per-element math used by both the CPU and the CUDA builds is marked PE_HD, so the CPU
// tests exercise exactly the arithmetic the GPU runs.
#if defined(__CUDACC__)
#define PE_HD __host__ __device__
#else
#define PE_HD
#endif

// Hot CPU loops are compiled for several instruction sets and picked at load time, so one
// binary runs on any x86-64 and still uses AVX2/AVX-512 where present (no -march=native).
// PE_RUNTIME_ISA marks builds where code may pick its instruction set at run time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__CUDACC__) && \
    !defined(PYENGINE_NO_CLONES)
#define PE_RUNTIME_ISA 1
#define PE_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PE_MULTIVERSION
#endif

namespace pyengine {

// Bad arguments are reported as std::invalid_argument (ValueError in Python), never abort().
inline void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// Squared difference of two samples, accumulated in double. The difference itself is
// taken in the input precision: for close values (the cancellation case) it is exact
// (Sterbenz), otherwise its relative error is one rounding of the input type.
template <typename T>
PE_HD inline double sq_diff(T a, T b) {
  const T d = b - a;
  return static_cast<double>(d) * static_cast<double>(d);
}

}  // namespace pyengine
