// CPU dispatch, one mechanism for every kernel source.
//
// CMake compiles the kernel sources (level_kernels.cpp, pl_simd.cpp,
// pairwise_rows.cpp) once per instruction set, each time into its own
// namespace named by UALIGN_ISA: isa_baseline, and isa_avx2 (-mavx2 -mpopcnt, built
// where UALIGN_HAS_AVX2 is defined: GCC or Clang on x86-64, not macOS or MSVC).
// Callers use the plain names (UALIGN_DISPATCHED), which forward to the set chosen
// once at module load: the best one the CPU supports, capped by the environment
// variable UALIGN_MAX_ISA (the model is ducc0's DUCC0_MAX_PSABI_LEVEL), so a machine
// with AVX2 can still run and test the baseline code. Floating-point contraction is
// off for every variant (CMakeLists.txt): all of them produce the same bits.
#pragma once

#include <utility>
#include <vector>

namespace ualign {

enum class Isa { baseline, avx2 };

// The instruction set the kernels run (baseline until select_isa).
Isa active_isa() noexcept;

// Chooses it: the best set of available_isas() not above max_isa, the value of
// UALIGN_MAX_ISA ("baseline" or "avx2"; null or empty: no cap). Any other value
// throws std::invalid_argument with a message starting with "UALIGN_MAX_ISA".
void select_isa(const char* max_isa);

// The instruction sets this build contains and this CPU runs, in increasing order.
std::vector<Isa> available_isas();

const char* isa_name(Isa isa) noexcept;

}  // namespace ualign

// Defines `fn` in the current namespace as a forwarder to isa_<active>::fn (declared
// before, one overload set per instruction set).
#ifdef UALIGN_HAS_AVX2
#define UALIGN_DISPATCHED(fn)                                                                            \
  template <class... Args>                                                                               \
  inline decltype(auto) fn(Args&&... args) {                                                             \
    if (::ualign::active_isa() == ::ualign::Isa::avx2) return isa_avx2::fn(std::forward<Args>(args)...); \
    return isa_baseline::fn(std::forward<Args>(args)...);                                                \
  }
// Declares the functions of `declarations` (a macro of no arguments) once per instruction set.
#define UALIGN_DECLARE_PER_ISA(declarations) \
  namespace isa_baseline {                   \
  declarations                               \
  }                                          \
  namespace isa_avx2 {                       \
  declarations                               \
  }
#else
#define UALIGN_DISPATCHED(fn)                             \
  template <class... Args>                                \
  inline decltype(auto) fn(Args&&... args) {              \
    return isa_baseline::fn(std::forward<Args>(args)...); \
  }
#define UALIGN_DECLARE_PER_ISA(declarations) \
  namespace isa_baseline {                   \
  declarations                               \
  }
#endif
