#include "pyengine/spectral.hpp"

#include "arrays.hpp"

namespace pyengine::bind {
namespace {

// y: writable float64, one row of at least n_rows contiguous values per column of x.
Rows y_rows(py::array& y, int64_t n_rows, int64_t n_cols) {
  const Rows r = rows_of(y, "y");
  if (!py::isinstance<py::array_t<double>>(y) || !y.writeable() || r.n_rows != n_cols || r.n_cols < n_rows)
    throw py::value_error("y: expected a writable float64 array of shape (" + std::to_string(n_cols) +
                          ", >= " + std::to_string(n_rows) + ") with contiguous rows");
  return r;
}

void transposed_displacements_py(const py::array& x, py::array& y, py::array& sq, int n_threads) {
  const Rows r = rows_of(x, "x");
  const Rows ry = y_rows(y, r.n_rows, r.n_cols);
  double* yp = static_cast<double*>(y.mutable_data());
  double* s = out_vec(sq, "sq", r.n_rows);
  py::gil_scoped_release nogil;
  if (is_f32(x))
    transposed_displacements(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, yp,
                             ry.row_stride, s, n_threads);
  else if (is_f64(x))
    transposed_displacements(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, yp,
                             ry.row_stride, s, n_threads);
  else {
    py::gil_scoped_acquire gil;
    throw py::type_error("x: expected float32 or float64");
  }
}

}  // namespace
}  // namespace pyengine::bind

void register_spectral(py::module_& m) {
  m.def("transposed_displacements", &pyengine::bind::transposed_displacements_py, py::arg("x"), py::arg("y"),
        py::arg("sq"), py::arg("n_threads") = 0,
        "y[c, t] = x[t, c] - x[0, c] for t < n (float64); sq[t] += sum_c y[c, t]**2.");
}
