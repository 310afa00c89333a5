// Heavy-tail kernels: Mohammadi tail-index statistics and the SαS log-likelihood.
#include <pybind11/stl.h>

#include <optional>

#include "arrays.hpp"
#include "pyengine/tail_index.hpp"
#include "pyengine/tail_stable.hpp"

namespace pyengine::bind {
namespace {

const int64_t* k1_ptr(const py::array_t<int64_t, py::array::c_style>& k1) {
  const int64_t* p = k1.data();
  for (int64_t g = 0; g < k1.size(); ++g)
    if (p[g] < 2) throw py::value_error("k1: every K1 must be >= 2, got " + std::to_string(p[g]));
  return p;
}

void tail_sums_py(const py::array& x, const py::array_t<int64_t, py::array::c_style>& k1, py::array& stats,
                  int n_threads) {
  const Rows r = rows_of(x, "x");
  const int64_t n_k1 = k1.size();
  const int64_t* kp = k1_ptr(k1);
  double* st = out_vec(stats, "stats", kTailHead + kTailPerK1 * n_k1);
  py::gil_scoped_release nogil;
  if (is_f32(x))
    tail_sums(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, kp, n_k1, st, n_threads);
  else if (is_f64(x))
    tail_sums(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, kp, n_k1, st, n_threads);
  else {
    py::gil_scoped_acquire gil;
    throw py::type_error("x: expected float32 or float64");
  }
}

void tail_norms_py(const py::array& x, const py::array_t<int64_t, py::array::c_style>& k1, py::array& row_sq,
                   py::array& group_sq, int n_threads) {
  const Rows r = rows_of(x, "x");
  const int64_t n_k1 = k1.size();
  const int64_t* kp = k1_ptr(k1);
  int64_t n_groups = 0;
  for (int64_t g = 0; g < n_k1; ++g) n_groups += r.n_rows / kp[g];
  double* rs = out_vec(row_sq, "row_sq", r.n_rows);
  double* gs = out_vec(group_sq, "group_sq", n_groups);
  py::gil_scoped_release nogil;
  if (is_f32(x))
    tail_norms(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, kp, n_k1, rs, gs, n_threads);
  else if (is_f64(x))
    tail_norms(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, kp, n_k1, rs, gs, n_threads);
  else {
    py::gil_scoped_acquire gil;
    throw py::type_error("x: expected float32 or float64");
  }
}

using F64 = py::array_t<double, py::array::c_style>;

void stable_loglik_py(const py::array& x, double loc, double scale, const F64& g, const F64& g_da, double h,
                      double x_tail, const F64& c, const F64& c_da, double alpha, py::array& sums,
                      std::optional<py::array> logp, int n_threads) {
  if (x.ndim() != 1 || (x.size() > 1 && x.strides(0) != static_cast<py::ssize_t>(x.itemsize())))
    throw py::value_error("x: expected a contiguous 1-D array");
  if (g.ndim() != 1 || g_da.size() != g.size() || c_da.size() != c.size())
    throw py::value_error("g, g_da (and c, c_da) must be 1-D arrays of equal length");
  const StableRow row{g.data(), g_da.data(), static_cast<int64_t>(g.size()) - 1, h, x_tail, c.data(),
                      c_da.data(), static_cast<int64_t>(c.size()), alpha};
  double* s = out_vec(sums, "sums", 4);
  double* lp = logp ? out_vec(*logp, "logp", x.size()) : nullptr;
  const int64_t n = x.size();
  py::gil_scoped_release nogil;
  if (is_f32(x))
    stable_loglik(static_cast<const float*>(x.data()), n, loc, scale, row, s, lp, n_threads);
  else if (is_f64(x))
    stable_loglik(static_cast<const double*>(x.data()), n, loc, scale, row, s, lp, n_threads);
  else {
    py::gil_scoped_acquire gil;
    throw py::type_error("x: expected float32 or float64");
  }
}

}  // namespace
}  // namespace pyengine::bind

void register_tail(py::module_& m) {
  using namespace pyengine::bind;
  m.def("tail_sums", &tail_sums_py, py::arg("x"), py::arg("k1"), py::arg("stats"), py::arg("n_threads") = 0,
        "Add the Mohammadi 1-D statistics of the columns of x to stats (see tail_index.hpp for the layout).");
  m.def("tail_norms", &tail_norms_py, py::arg("x"), py::arg("k1"), py::arg("row_sq"), py::arg("group_sq"),
        py::arg("n_threads") = 0,
        "Add squared row norms and squared norms of K1-row group sums (multivariate Mohammadi).");
  m.def("stable_loglik", &stable_loglik_py, py::arg("x"), py::arg("loc"), py::arg("scale"), py::arg("g"),
        py::arg("g_da"), py::arg("h"), py::arg("x_tail"), py::arg("c"), py::arg("c_da"), py::arg("alpha"),
        py::arg("sums"), py::arg("logp") = py::none(), py::arg("n_threads") = 0,
        "Add the SαS log-likelihood and its (alpha, loc, scale) gradient to sums (see tail_stable.hpp).");
}
