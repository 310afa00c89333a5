#pragma once
#include <string>

namespace pyengine {

// A one-line description of how the kernels were built (compiler, OpenMP, flags).
std::string build_info();

// Threads the CPU kernels use when asked for 0 ("all").
int max_threads();

// A tiny known-answer computation through the lag-band kernel; returns 0 when correct.
int selfcheck();

}  // namespace pyengine
