// pyengine._cuda: CUDA kernels on device pointers (CuPy's `.data.ptr`). The Python layer
// (pyengine.kernels) checks shapes and dtypes of the CuPy arrays before calling in here.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "pyengine/cuda.hpp"

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

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pyengine CUDA kernels (device pointers)";
  m.def("device_count", &device_count, "(number of devices, reason when 0)");
  m.def("lag_band", &lag_band, py::arg("x"), py::arg("dtype"), py::arg("n_rows"), py::arg("n_cols"),
        py::arg("row_stride"), py::arg("lags"), py::arg("n_lags"), py::arg("out"), py::arg("stream") = 0);
}
