// Build information, the CPU dispatch choice and the memory-bandwidth reference used by bench/.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "bindings.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"
#include "ties.hpp"

namespace ualign::bind {

void register_info(py::module_& m) {
  // The tie conventions' codes, defined once (Ties in ties.hpp); the Python layer reads them here.
  py::dict ties;
  ties["uniform"] = static_cast<int>(Ties::uniform);
  ties["half"] = static_cast<int>(Ties::half);
  ties["strict"] = static_cast<int>(Ties::strict);
  ties["weak"] = static_cast<int>(Ties::weak);
  m.attr("TIE_CODES") = ties;

#ifdef UALIGN_HAS_OPENMP
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
  m.def("max_threads", &max_threads, "Threads an OpenMP kernel would use now (1 without OpenMP).");

  // Read once, here at import and before any kernel can run; an invalid value makes
  // the import fail with a message naming the variable.
  select_isa(std::getenv("UALIGN_MAX_ISA"));
  m.def(
      "isa", [] { return std::string(isa_name(active_isa())); },
      "The instruction set the kernels use: the best of available_isas() allowed by the environment "
      "variable UALIGN_MAX_ISA ('baseline' or 'avx2'; unset or empty: no cap), read at import. Every "
      "instruction set gives the same bits.");
  m.def(
      "available_isas",
      [] {
        py::list names;
        for (Isa isa : ualign::available_isas()) names.append(isa_name(isa));
        return names;
      },
      "The instruction sets this build contains and this CPU runs, from the baseline up.");

  m.def(
      "stream_sum",
      [](const exact_array<uint16_t>& a) {
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
      },
      "Sum of a uint16 array in one pass (bandwidth reference for benchmarks).");
}

}  // namespace ualign::bind
