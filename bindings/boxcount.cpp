#include "pyengine/boxcount.hpp"

#include <string>

#include "arrays.hpp"

namespace pyengine::bind {
namespace {

using I64 = py::array_t<int64_t, py::array::c_style>;
using F64 = py::array_t<double, py::array::c_style>;

void box_counts_py(const py::array& z, int64_t oy, int64_t ox, const I64& sizes,
                   const F64& inv_heights, double zmin, int rule, py::array& counts,
                   py::array& n_blocks, int n_threads) {
  const Rows r = rows_of(z, "z");
  const int64_t n = sizes.size();
  if (inv_heights.size() != n) throw py::value_error("inv_heights: expected one per size");
  double* c = out_f64(counts, "counts", 1, n);
  double* b = out_f64(n_blocks, "n_blocks", 1, n);
  const int64_t* s = sizes.data();
  const double* ih = inv_heights.data();
  const bool u8 = z.dtype().is(py::dtype::of<uint8_t>()) || z.dtype().is(py::dtype::of<bool>());
  if (!(is_f32(z) || is_f64(z) || u8)) throw py::type_error("z: expected float32, float64, uint8 or bool");
  py::gil_scoped_release nogil;
  if (is_f32(z))
    box_counts(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, oy, ox, s, ih, n, zmin, rule, c, b, n_threads);
  else if (is_f64(z))
    box_counts(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, oy, ox, s, ih, n, zmin, rule, c, b, n_threads);
  else
    box_counts(static_cast<const uint8_t*>(r.data), r.n_rows, r.n_cols, r.row_stride, oy, ox, s, ih, n, zmin, rule, c, b, n_threads);
}

F64 surface_stats_py(const py::array& z, int n_threads) {
  const Rows r = rows_of(z, "z");
  if (!(is_f32(z) || is_f64(z))) throw py::type_error("z: expected float32 or float64");
  F64 out(5);
  double* o = out.mutable_data();
  py::gil_scoped_release nogil;
  if (is_f32(z))
    surface_stats(static_cast<const float*>(r.data), r.n_rows, r.n_cols, r.row_stride, o, n_threads);
  else
    surface_stats(static_cast<const double*>(r.data), r.n_rows, r.n_cols, r.row_stride, o, n_threads);
  return out;
}

}  // namespace
}  // namespace pyengine::bind

void register_boxcount(py::module_& m) {
  m.def("box_counts", &pyengine::bind::box_counts_py, py::arg("z"), py::arg("oy"), py::arg("ox"),
        py::arg("sizes"), py::arg("inv_heights"), py::arg("zmin"), py::arg("rule"), py::arg("counts"),
        py::arg("n_blocks"), py::arg("n_threads") = 0,
        "counts[0, i] += boxes over whole sizes[i]-blocks of z[oy:, ox:]; n_blocks[0, i] += blocks "
        "(rule 0 DBC, 1 IDBC, 2 occupied).");
  m.def("surface_stats", &pyengine::bind::surface_stats_py, py::arg("z"), py::arg("n_threads") = 0,
        "[min, max, sum(z - z0), sum((z - z0)**2), NaN count] over z, z0 = z[0, 0].");
}
