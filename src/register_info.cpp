// Build information and the memory-bandwidth reference used by bench/.
#include <cstdint>

#include "bindings.hpp"
#include "parallel.hpp"

namespace ualign::bind {

void register_info(py::module_& m) {
#ifdef UALIGN_HAS_OPENMP
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
  m.def("max_threads", &max_threads, "Threads an OpenMP kernel would use now (1 without OpenMP).");

  m.def("stream_sum", [](const exact_array<uint16_t>& a) {
    // One streaming pass over a uint16 array: the floor any O(n*m) kernel pays.
    const uint16_t* data = a.data();
    const int64_t size = a.size();
    py::gil_scoped_release release;
    uint64_t total = 0;
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel for reduction(+ : total) schedule(static)
#endif
    for (int64_t j = 0; j < size; ++j) total += data[j];
    return total;
  }, "Sum of a uint16 array in one pass (bandwidth reference for benchmarks).");
}

}  // namespace ualign::bind
