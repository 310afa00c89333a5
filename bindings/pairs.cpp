#include "pyengine/pairs.hpp"

#include <string>

#include "arrays.hpp"

namespace pyengine::bind {
namespace {

// A float64 pair source: a (n, n) matrix with contiguous rows, or a length-n vector.
PairSource source_of(const py::array& a, const char* name, int64_t* n) {
  if (!py::isinstance<py::array_t<double>>(a))
    throw py::type_error(std::string(name) + ": expected a float64 array");
  if (a.ndim() == 1) {
    if (a.shape(0) > 1 && a.strides(0) != sizeof(double))
      throw py::value_error(std::string(name) + ": a vector source must be contiguous");
    *n = a.shape(0);
    return {static_cast<const double*>(a.data()), 0};
  }
  const Rows r = rows_of(a, name);
  if (r.n_rows != r.n_cols)
    throw py::value_error(std::string(name) + ": expected a square (n, n) matrix, got (" +
                          std::to_string(r.n_rows) + ", " + std::to_string(r.n_cols) + ")");
  *n = r.n_rows;
  return {static_cast<const double*>(r.data), std::max<int64_t>(r.row_stride, 1)};
}

void pair_bin_py(const py::array& key, const py::array& value,
                 const py::array_t<double, py::array::c_style>& edges, bool log_uniform,
                 py::array& out, int n_threads) {
  int64_t n_key = 0, n_value = 0;
  const PairSource k = source_of(key, "key", &n_key);
  const PairSource v = source_of(value, "value", &n_value);
  if (n_key != n_value)
    throw py::value_error("key and value must cover the same points, got " + std::to_string(n_key) +
                          " and " + std::to_string(n_value));
  if (edges.ndim() != 1 || edges.size() < 2)
    throw py::value_error("edges: expected a 1-D array of at least 2 bin edges");
  const int64_t n_bins = edges.size() - 1;
  double* o = out_f64(out, "out", kPairStats, n_bins);
  py::gil_scoped_release nogil;
  pair_bin(k, v, n_key, edges.data(), n_bins, log_uniform, o, n_threads);
}

}  // namespace
}  // namespace pyengine::bind

void register_pairs(py::module_& m) {
  m.def("pair_bin", &pyengine::bind::pair_bin_py, py::arg("key"), py::arg("value"), py::arg("edges"),
        py::arg("log_uniform"), py::arg("out"), py::arg("n_threads") = 0,
        "Bin the pairs a < b by key; out[0..3, k] += count, sum of keys, sum of values, sum of squares.\n"
        "key/value: (n, n) float64 matrix (entry [a, b]) or length-n vector (|u_b - u_a|, (u_b - u_a)**2).");
}
