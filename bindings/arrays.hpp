// Array checks shared by the binding files: shapes, dtypes and strides are validated here,
// so kernels receive plain pointers they can trust.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace py = pybind11;

namespace pyengine::bind {

// A 2-D array whose rows are contiguous (row stride may exceed the width: column views).
struct Rows {
  const void* data;
  int64_t n_rows, n_cols, row_stride;  // row_stride in elements
};

inline Rows rows_of(const py::array& a, const char* name) {
  if (a.ndim() != 2)
    throw py::value_error(std::string(name) + ": expected a 2-D array (n_snapshots, n_params), got " +
                          std::to_string(a.ndim()) + "-D");
  const auto item = static_cast<int64_t>(a.itemsize());
  if (a.shape(1) > 1 && a.strides(1) != item)
    throw py::value_error(std::string(name) +
                          ": each row must be contiguous (use np.ascontiguousarray)");
  const int64_t stride = a.shape(0) > 1 ? a.strides(0) : a.shape(1) * item;
  if (stride % item != 0 || stride < a.shape(1) * item)
    throw py::value_error(std::string(name) + ": unsupported row stride");
  return {a.data(), a.shape(0), a.shape(1), stride / item};
}

// A C-contiguous writable float64 array of the given shape.
inline double* out_f64(py::array& a, const char* name, int64_t rows, int64_t cols) {
  if (!py::isinstance<py::array_t<double>>(a) || a.ndim() != 2 || a.shape(0) != rows ||
      a.shape(1) != cols || !(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(std::string(name) + ": expected a writable C-contiguous float64 array of shape (" +
                          std::to_string(rows) + ", " + std::to_string(cols) + ")");
  return static_cast<double*>(a.mutable_data());
}

// A writable C-contiguous float64 vector of n entries.
inline double* out_vec(py::array& a, const char* name, int64_t n) {
  if (!py::isinstance<py::array_t<double>>(a) || a.ndim() != 1 || a.shape(0) != n ||
      !(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(std::string(name) + ": expected a writable contiguous float64 vector of " +
                          std::to_string(n) + " entries");
  return static_cast<double*>(a.mutable_data());
}

// Equivalent dtypes, not the same object: h5py's dtypes, for one, carry metadata.
inline bool is_f32(const py::array& a) { return py::isinstance<py::array_t<float>>(a); }
inline bool is_f64(const py::array& a) { return py::isinstance<py::array_t<double>>(a); }

}  // namespace pyengine::bind
