// pyengine._cuda: CUDA kernels on device pointers (CuPy's `.data.ptr`). The Python layer
// (pyengine.kernels) checks shapes and dtypes of the CuPy arrays before calling in here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pyengine/cuda.hpp"
#include "pyengine/pairs.hpp"

namespace py = pybind11;

namespace {

py::tuple device_count() {
  std::string why;
  const int n = pyengine::cuda::device_count(&why);
  return py::make_tuple(n, why);
}

void lag_band(std::uintptr_t x, const std::string& dtype, int64_t n_rows, int64_t n_cols,
              int64_t row_stride, std::uintptr_t lags, int64_t n_lags, std::uintptr_t out,
              std::uintptr_t stream) {
  const auto* lp = reinterpret_cast<const int64_t*>(lags);
  auto* o = reinterpret_cast<double*>(out);
  py::gil_scoped_release nogil;
  if (dtype == "float32")
    pyengine::cuda::lag_band(reinterpret_cast<const float*>(x), n_rows, n_cols, row_stride, lp, n_lags, o, stream);
  else if (dtype == "float64")
    pyengine::cuda::lag_band(reinterpret_cast<const double*>(x), n_rows, n_cols, row_stride, lp, n_lags, o, stream);
  else
    throw std::invalid_argument("lag_band (cuda): dtype must be float32 or float64, got " + dtype);
}

void box_counts(std::uintptr_t z, const std::string& dtype, int64_t ny, int64_t nx,
                int64_t row_stride, int64_t oy, int64_t ox, const std::vector<int64_t>& sizes,
                const std::vector<double>& inv_heights, double zmin, int rule, std::uintptr_t counts,
                std::uintptr_t n_blocks, std::uintptr_t stream) {
  if (inv_heights.size() != sizes.size())
    throw std::invalid_argument("box_counts (cuda): expected one inverse height per size");
  auto* c = reinterpret_cast<double*>(counts);
  auto* b = reinterpret_cast<double*>(n_blocks);
  const auto n = static_cast<int64_t>(sizes.size());
  py::gil_scoped_release nogil;
  if (dtype == "float32")
    pyengine::cuda::box_counts(reinterpret_cast<const float*>(z), ny, nx, row_stride, oy, ox, sizes.data(), inv_heights.data(), n, zmin, rule, c, b, stream);
  else if (dtype == "float64")
    pyengine::cuda::box_counts(reinterpret_cast<const double*>(z), ny, nx, row_stride, oy, ox, sizes.data(), inv_heights.data(), n, zmin, rule, c, b, stream);
  else if (dtype == "uint8" || dtype == "bool")
    pyengine::cuda::box_counts(reinterpret_cast<const uint8_t*>(z), ny, nx, row_stride, oy, ox, sizes.data(), inv_heights.data(), n, zmin, rule, c, b, stream);
  else
    throw std::invalid_argument("box_counts (cuda): dtype must be float32, float64, uint8 or bool, got " + dtype);
}

// key_ld / value_ld: row stride (elements) of a square float64 matrix source, 0 for a vector.
void pair_bin(std::uintptr_t key, int64_t key_ld, std::uintptr_t value, int64_t value_ld, int64_t n,
              std::uintptr_t edges, int64_t n_bins, bool log_uniform, std::uintptr_t out,
              std::uintptr_t stream) {
  const pyengine::PairSource k{reinterpret_cast<const double*>(key), key_ld};
  const pyengine::PairSource v{reinterpret_cast<const double*>(value), value_ld};
  py::gil_scoped_release nogil;
  pyengine::cuda::pair_bin(k, v, n, reinterpret_cast<const double*>(edges), n_bins, log_uniform,
                           reinterpret_cast<double*>(out), stream);
}

void tail_sums(std::uintptr_t x, const std::string& dtype, int64_t n_rows, int64_t n_cols, int64_t row_stride,
               const std::vector<int64_t>& k1, std::uintptr_t stats, std::uintptr_t stream) {
  auto* s = reinterpret_cast<double*>(stats);
  const auto n = static_cast<int64_t>(k1.size());
  py::gil_scoped_release nogil;
  if (dtype == "float32")
    pyengine::cuda::tail_sums(reinterpret_cast<const float*>(x), n_rows, n_cols, row_stride, k1.data(), n, s, stream);
  else if (dtype == "float64")
    pyengine::cuda::tail_sums(reinterpret_cast<const double*>(x), n_rows, n_cols, row_stride, k1.data(), n, s, stream);
  else
    throw std::invalid_argument("tail_sums (cuda): dtype must be float32 or float64, got " + dtype);
}

void tail_norms(std::uintptr_t x, const std::string& dtype, int64_t n_rows, int64_t n_cols, int64_t row_stride,
                const std::vector<int64_t>& k1, std::uintptr_t row_sq, std::uintptr_t group_sq,
                std::uintptr_t stream) {
  auto* r = reinterpret_cast<double*>(row_sq);
  auto* g = reinterpret_cast<double*>(group_sq);
  const auto n = static_cast<int64_t>(k1.size());
  py::gil_scoped_release nogil;
  if (dtype == "float32")
    pyengine::cuda::tail_norms(reinterpret_cast<const float*>(x), n_rows, n_cols, row_stride, k1.data(), n, r, g, stream);
  else if (dtype == "float64")
    pyengine::cuda::tail_norms(reinterpret_cast<const double*>(x), n_rows, n_cols, row_stride, k1.data(), n, r, g, stream);
  else
    throw std::invalid_argument("tail_norms (cuda): dtype must be float32 or float64, got " + dtype);
}

void stable_loglik(std::uintptr_t x, const std::string& dtype, int64_t n, double loc, double scale,
                   std::uintptr_t g, std::uintptr_t g_da, int64_t n_u, double h, double x_tail, std::uintptr_t c,
                   std::uintptr_t c_da, int64_t n_c, double alpha, std::uintptr_t sums, std::uintptr_t logp,
                   std::uintptr_t stream) {
  const pyengine::StableRow row{reinterpret_cast<const double*>(g), reinterpret_cast<const double*>(g_da), n_u, h,
                                x_tail, reinterpret_cast<const double*>(c), reinterpret_cast<const double*>(c_da),
                                n_c, alpha};
  auto* s = reinterpret_cast<double*>(sums);
  auto* lp = reinterpret_cast<double*>(logp);
  py::gil_scoped_release nogil;
  if (dtype == "float32")
    pyengine::cuda::stable_loglik(reinterpret_cast<const float*>(x), n, loc, scale, row, s, lp, stream);
  else if (dtype == "float64")
    pyengine::cuda::stable_loglik(reinterpret_cast<const double*>(x), n, loc, scale, row, s, lp, stream);
  else
    throw std::invalid_argument("stable_loglik (cuda): dtype must be float32 or float64, got " + dtype);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pyengine CUDA kernels (device pointers)";
  m.def("device_count", &device_count, "(number of devices, reason when 0)");
  m.def("lag_band", &lag_band, py::arg("x"), py::arg("dtype"), py::arg("n_rows"), py::arg("n_cols"),
        py::arg("row_stride"), py::arg("lags"), py::arg("n_lags"), py::arg("out"), py::arg("stream") = 0);
  m.def("box_counts", &box_counts, py::arg("z"), py::arg("dtype"), py::arg("ny"), py::arg("nx"),
        py::arg("row_stride"), py::arg("oy"), py::arg("ox"), py::arg("sizes"), py::arg("inv_heights"),
        py::arg("zmin"), py::arg("rule"), py::arg("counts"), py::arg("n_blocks"), py::arg("stream") = 0);
  m.def("pair_bin", &pair_bin, py::arg("key"), py::arg("key_ld"), py::arg("value"), py::arg("value_ld"),
        py::arg("n"), py::arg("edges"), py::arg("n_bins"), py::arg("log_uniform"), py::arg("out"),
        py::arg("stream") = 0);
  m.def("tail_sums", &tail_sums, py::arg("x"), py::arg("dtype"), py::arg("n_rows"), py::arg("n_cols"),
        py::arg("row_stride"), py::arg("k1"), py::arg("stats"), py::arg("stream") = 0);
  m.def("tail_norms", &tail_norms, py::arg("x"), py::arg("dtype"), py::arg("n_rows"), py::arg("n_cols"),
        py::arg("row_stride"), py::arg("k1"), py::arg("row_sq"), py::arg("group_sq"), py::arg("stream") = 0);
  m.def("stable_loglik", &stable_loglik, py::arg("x"), py::arg("dtype"), py::arg("n"), py::arg("loc"),
        py::arg("scale"), py::arg("g"), py::arg("g_da"), py::arg("n_u"), py::arg("h"), py::arg("x_tail"),
        py::arg("c"), py::arg("c_da"), py::arg("n_c"), py::arg("alpha"), py::arg("sums"), py::arg("logp"),
        py::arg("stream") = 0);
}
