#include "pyengine/increments.hpp"

#include "arrays.hpp"

namespace pyengine::bind {
namespace {

int64_t increment_sums_py(const py::array& x, int64_t max_lag, py::array& power, py::array& power_sq,
                          py::array& acf, py::array& acf_sq, int n_threads, int lanes) {
  const Rows r = rows_of(x, "x");
  if (!is_f32(x) && !is_f64(x)) throw py::type_error("x: expected float32 or float64");
  if (r.n_rows < 2) throw py::value_error("x: a window needs at least 2 snapshots (rows)");
  if (max_lag < 0 || max_lag >= r.n_rows)
    throw py::value_error("max_lag must be in [0, " + std::to_string(r.n_rows - 1) + "] for " +
                          std::to_string(r.n_rows) + " rows, got " + std::to_string(max_lag));
  if (power.ndim() != 1 || power.shape(0) < 5)
    throw py::value_error("power: expected a float64 vector of nfft/2 + 1 >= 5 entries");
  const int64_t n_bins = power.shape(0), nfft = 2 * (n_bins - 1);
  double* p = out_vec(power, "power", n_bins);
  double* p2 = out_vec(power_sq, "power_sq", n_bins);
  double* a = out_vec(acf, "acf", max_lag + 1);
  double* a2 = out_vec(acf_sq, "acf_sq", max_lag + 1);
  py::gil_scoped_release nogil;
  if (is_f32(x))
    return increment_sums(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, max_lag, nfft, p,
                          p2, a, a2, n_threads, lanes);
  return increment_sums(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, max_lag, nfft, p, p2,
                        a, a2, n_threads, lanes);
}

}  // namespace
}  // namespace pyengine::bind

void register_increments(py::module_& m) {
  m.def("increment_sums", &pyengine::bind::increment_sums_py, py::arg("x"), py::arg("max_lag"), py::arg("power"),
        py::arg("power_sq"), py::arg("acf"), py::arg("acf_sq"), py::arg("n_threads") = 0, py::arg("lanes") = 0,
        "Increment periodograms (nfft = 2 * (len(power) - 1), a power of two) and weight "
        "autocorrelations (lags 0 .. len(acf) - 1 = max_lag) of the window x, summed over its "
        "columns into power, power_sq, acf, acf_sq; returns the number of moving columns. "
        "lanes: SIMD lanes (0: the widest this CPU runs; 2, 4, 8 to test one).");
}
