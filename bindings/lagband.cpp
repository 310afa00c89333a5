#include "pyengine/lagband.hpp"

#include "arrays.hpp"

namespace pyengine::bind {
namespace {

void lag_band_py(const py::array& x, const py::array_t<int64_t, py::array::c_style>& lags,
                 py::array& out, int n_threads) {
  const Rows r = rows_of(x, "x");
  const int64_t n_lags = lags.size();
  double* o = out_f64(out, "out", n_lags, r.n_rows);
  const int64_t* lp = lags.data();
  for (int64_t l = 0; l < n_lags; ++l)
    if (lp[l] < 1) throw py::value_error("lags must be >= 1");
  py::gil_scoped_release nogil;
  if (is_f32(x))
    lag_band(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, lp, n_lags, o, n_threads);
  else if (is_f64(x))
    lag_band(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, lp, n_lags, o, n_threads);
  else {
    py::gil_scoped_acquire gil;
    throw py::type_error("x: expected float32 or float64");
  }
}

}  // namespace
}  // namespace pyengine::bind

void register_lagband(py::module_& m) {
  m.def("lag_band", &pyengine::bind::lag_band_py, py::arg("x"), py::arg("lags"), py::arg("out"),
        py::arg("n_threads") = 0,
        "out[l, t] += sum_c (x[t + lags[l], c] - x[t, c])**2 for t < n - lags[l] (float64 sums).");
}
