// pyengine._core: the CPU kernels. One register_* function per kernel family.
#include <pybind11/pybind11.h>

#include "pyengine/info.hpp"

namespace py = pybind11;

void register_lagband(py::module_& m);
void register_boxcount(py::module_& m);
void register_pairs(py::module_& m);
void register_tail(py::module_& m);
void register_spectral(py::module_& m);
void register_increments(py::module_& m);
void register_files(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyengine CPU kernels (C++/OpenMP)";
  m.def("build_info", &pyengine::build_info, "How the kernels were compiled.");
  m.def("max_threads", &pyengine::max_threads, "Threads the kernels use by default.");
  m.def("selfcheck", &pyengine::selfcheck, "Known-answer check of the kernels; 0 means correct.");
  register_lagband(m);
  register_boxcount(m);
  register_pairs(m);
  register_tail(m);
  register_spectral(m);
  register_increments(m);
  register_files(m);
}
