#include "pyengine/spectral.hpp"

#include "arrays.hpp"

namespace pyengine::bind {
namespace {

void spectral_sums_py(const py::array& x, int64_t n_origins, py::array& cross, py::array& sq, int n_threads,
                      int lanes) {
  const Rows r = rows_of(x, "x");
  if (!py::isinstance<py::array_t<std::complex<double>>>(cross) || cross.ndim() != 1 || cross.shape(0) < 5 ||
      !(cross.flags() & py::array::c_style) || !cross.writeable())
    throw py::value_error("cross: expected a writable contiguous complex128 vector of nfft/2 + 1 >= 5 entries");
  const int64_t nfft = 2 * (cross.shape(0) - 1);
  double* c = static_cast<double*>(cross.mutable_data());
  double* s = out_vec(sq, "sq", r.n_rows);
  if (!is_f32(x) && !is_f64(x)) throw py::type_error("x: expected float32 or float64");
  py::gil_scoped_release nogil;
  if (is_f32(x))
    spectral_sums(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, n_origins, nfft, c, s,
                  n_threads, lanes);
  else
    spectral_sums(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, n_origins, nfft, c, s,
                  n_threads, lanes);
}

}  // namespace
}  // namespace pyengine::bind

void register_spectral(py::module_& m) {
  m.def("spectral_sums", &pyengine::bind::spectral_sums_py, py::arg("x"), py::arg("n_origins"), py::arg("cross"),
        py::arg("sq"), py::arg("n_threads") = 0, py::arg("lanes") = 0,
        "cross += sum_c conj(FFT(y_c[:n_origins])) * FFT(y_c), sq[t] += sum_c y_c(t)**2, with "
        "y_c(t) = x[t, c] - x[0, c] and nfft = 2 * (len(cross) - 1), a power of two. lanes: SIMD "
        "lanes (0: the widest this CPU runs; 2, 4, 8 to test one).");
}
