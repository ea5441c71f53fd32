#include "dispatch.hpp"

#include <atomic>
#include <stdexcept>
#include <string>

namespace ualign {

namespace {

// Written once by select_isa (module import, under the GIL) before any kernel runs.
std::atomic<Isa> g_active{Isa::baseline};

bool cpu_runs(Isa isa) {
  switch (isa) {
    case Isa::baseline: return true;
    case Isa::avx2:
#ifdef UALIGN_HAS_AVX2
      // Also checks that the OS saves the AVX state (XGETBV).
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
      return false;
#endif
  }
  return false;
}

}  // namespace

Isa active_isa() noexcept { return g_active.load(std::memory_order_relaxed); }

const char* isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
  }
  return "unknown";
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::baseline, Isa::avx2})
    if (cpu_runs(isa)) out.push_back(isa);
  return out;
}

void select_isa(const char* max_isa) {
  Isa cap = Isa::avx2;
  if (max_isa != nullptr && *max_isa != '\0') {
    const std::string value(max_isa);
    if (value == isa_name(Isa::baseline)) {
      cap = Isa::baseline;
    } else if (value == isa_name(Isa::avx2)) {
      cap = Isa::avx2;
    } else {
      throw std::invalid_argument("UALIGN_MAX_ISA must be 'baseline' or 'avx2' (or unset), got '" + value + "'");
    }
  }
  Isa chosen = Isa::baseline;
  for (Isa isa : available_isas())
    if (static_cast<int>(isa) <= static_cast<int>(cap)) chosen = isa;
  g_active.store(chosen, std::memory_order_relaxed);
}

}  // namespace ualign
