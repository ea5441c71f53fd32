// Portable short vectors shared by the kernel sources (level_kernels.cpp,
// pl_simd.cpp), which CMake compiles once per instruction set (dispatch.hpp).
//
// Everything here lives in the instruction set's namespace and is forced inline,
// so each variant gets its own copy (no shared out-of-line copy compiled for AVX2
// can be picked by the linker for the baseline). Floating-point contraction is off
// (CMakeLists), so every variant rounds identically.
#pragma once

#include <cstdint>
#include <cstring>

#ifndef UALIGN_ISA
#error "simd.hpp is for the kernel sources, compiled once per instruction set with UALIGN_ISA defined (CMakeLists.txt)"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define UALIGN_INLINE __attribute__((always_inline)) inline
#else
#define UALIGN_INLINE inline
#endif

namespace ualign::UALIGN_ISA::simd {

#if defined(__GNUC__) || defined(__clang__)
// Four doubles; GCC/Clang lower this to the widest vectors of the target
// (two SSE2 registers on baseline x86-64, one AVX2 register in the avx2 variant).
typedef double vec4 __attribute__((vector_size(32)));
UALIGN_INLINE vec4 load4(const double* p) {
  vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
UALIGN_INLINE void store4(double* p, vec4 v) { std::memcpy(p, &v, sizeof v); }
UALIGN_INLINE vec4 splat4(double x) { return vec4{x, x, x, x}; }
#else
struct vec4 {
  double v[4];
  friend vec4 operator*(vec4 a, vec4 b) {
    for (int i = 0; i < 4; ++i) a.v[i] *= b.v[i];
    return a;
  }
  friend vec4 operator+(vec4 a, vec4 b) {
    for (int i = 0; i < 4; ++i) a.v[i] += b.v[i];
    return a;
  }
  vec4& operator*=(vec4 b) { return *this = *this * b; }
};
UALIGN_INLINE vec4 load4(const double* p) {
  vec4 v;
  std::memcpy(v.v, p, sizeof v.v);
  return v;
}
UALIGN_INLINE void store4(double* p, vec4 v) { std::memcpy(p, v.v, sizeof v.v); }
UALIGN_INLINE vec4 splat4(double x) { return vec4{{x, x, x, x}}; }
#endif

// vec4 per block of levels: independent chains that hide multiply latency.
constexpr int kLanes = 4;

// x[l] <- x[l]^k for every lane, by squaring.
UALIGN_INLINE void pow_block(vec4* x, int64_t k) {
  vec4 r[kLanes];
  for (int l = 0; l < kLanes; ++l) r[l] = splat4(1.0);
  for (int64_t e = k; e > 0; e >>= 1) {
    if (e & 1)
      for (int l = 0; l < kLanes; ++l) r[l] *= x[l];
    for (int l = 0; l < kLanes; ++l) x[l] *= x[l];
  }
  for (int l = 0; l < kLanes; ++l) x[l] = r[l];
}

// The policy mass of each level of four consecutive voters (rows row0 + v*m),
// interleaved: mass4[4*r + v], for r < size (levels >= the voter's count get 0).
// With strict_rows (no voter of the four has ties) every level holds exactly one
// response, so the scatter is a plain store.
template <class Level>
UALIGN_INLINE void scatter_levels_x4(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi,
                                     double* mass4) {
  const Level* row1 = row0 + m;
  const Level* row2 = row1 + m;
  const Level* row3 = row2 + m;
  if (strict_rows) {
    for (int64_t r = 4 * m; r < 4 * size; ++r) mass4[r] = 0.0;
    for (int64_t y = 0; y < m; ++y) {
      const double p = pi[y];
      mass4[4 * static_cast<int64_t>(row0[y])] = p;
      mass4[4 * static_cast<int64_t>(row1[y]) + 1] = p;
      mass4[4 * static_cast<int64_t>(row2[y]) + 2] = p;
      mass4[4 * static_cast<int64_t>(row3[y]) + 3] = p;
    }
  } else {
    std::memset(mass4, 0, sizeof(double) * static_cast<size_t>(4 * size));
    for (int64_t y = 0; y < m; ++y) {
      const double p = pi[y];
      mass4[4 * static_cast<int64_t>(row0[y])] += p;
      mass4[4 * static_cast<int64_t>(row1[y]) + 1] += p;
      mass4[4 * static_cast<int64_t>(row2[y]) + 2] += p;
      mass4[4 * static_cast<int64_t>(row3[y]) + 3] += p;
    }
  }
}

}  // namespace ualign::UALIGN_ISA::simd
