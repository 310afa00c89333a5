// Chunks of a file mapped side by side into one read-only array: a block of a trajectory
// read in place from the page cache, with no copy (see pyengine/store/_raw_chunks.py).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

#include "arrays.hpp"

namespace pyengine::bind {
namespace {

[[noreturn]] void raise_errno(int err) {
  errno = err;
  PyErr_SetFromErrno(PyExc_OSError);
  throw py::error_already_set();
}

// The i-th chunk (chunk_bytes at offsets[i] in fd) at byte i * chunk_bytes of a fresh mapping.
py::array map_chunks(int fd, const py::array_t<int64_t, py::array::c_style>& offsets, int64_t chunk_bytes) {
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t n = offsets.size();
  if (n < 1 || chunk_bytes < 1 || chunk_bytes % page != 0)
    throw py::value_error("map_chunks: need at least one chunk and chunk_bytes a multiple of the page size (" +
                          std::to_string(page) + "), got " + std::to_string(chunk_bytes));
  struct stat st {};
  if (fstat(fd, &st) != 0) raise_errno(errno);
  const int64_t* off = offsets.data();
  for (int64_t i = 0; i < n; ++i)
    if (off[i] < 0 || off[i] % page != 0 || off[i] + chunk_bytes > st.st_size)
      // Past the end of the file, a mapped page would raise SIGBUS when read.
      throw py::value_error("map_chunks: chunk at byte " + std::to_string(off[i]) +
                            " is not page aligned or lies past the end of the file (" +
                            std::to_string(st.st_size) + " bytes)");
  const auto total = static_cast<size_t>(n * chunk_bytes);
  char* base = nullptr;
  int err = 0;
  {
    py::gil_scoped_release nogil;
    void* region = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) {
      err = errno;
    } else {
      base = static_cast<char*>(region);
      // Cold chunks: start reading all of them before populating the first.
      for (int64_t i = 0; i < n; ++i) posix_fadvise(fd, off[i], chunk_bytes, POSIX_FADV_WILLNEED);
      for (int64_t i = 0; i < n && err == 0; ++i)
        if (mmap(base + i * chunk_bytes, static_cast<size_t>(chunk_bytes), PROT_READ,
                 MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, off[i]) == MAP_FAILED)
          err = errno;
      if (err != 0) munmap(base, total);
    }
  }
  if (err != 0) raise_errno(err);
  auto* mapping = new std::pair<char*, size_t>(base, total);
  py::capsule unmap(mapping, [](void* p) {
    auto* r = static_cast<std::pair<char*, size_t>*>(p);
    munmap(r->first, r->second);
    delete r;
  });
  py::array out(py::dtype("uint8"), {static_cast<py::ssize_t>(total)}, {1}, base, unmap);
  py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return out;
}

}  // namespace
}  // namespace pyengine::bind

void register_files(py::module_& m) {
  m.def("map_chunks", &pyengine::bind::map_chunks, py::arg("fd"), py::arg("offsets"), py::arg("chunk_bytes"),
        "Read-only uint8 array of len(offsets) * chunk_bytes bytes: the file's chunks at these page-aligned "
        "offsets, mapped side by side (MAP_SHARED | MAP_POPULATE); unmapped when the array is freed.");
}
