// Several k at once for four interleaved voters: the closed forms of
// product_levels_x4 (level_kernels.cpp) for a list of k after one scatter and one
// running sum, operation for operation the same arithmetic, so every value has
// the bits product_levels_x4 gives for that k alone. Under uniform ties the
// geometric recurrence s_j = L s_(j-1) + A^j is run once up to the largest k and
// read at each k, which turns sum_k O(k) into O(max k) per level.
//
// Keep in step with product_levels_x4_impl, single_vs_product_lanes, pow_block and
// geometric_block of level_kernels.cpp: tests/test_audit_many.py checks the batch
// audit against the per-prompt API bit for bit for every tie convention.
#include <cstring>
#include <vector>

#include "batch_kernels.hpp"
#include "simd.hpp"

namespace ualign::UALIGN_ISA {

namespace {

using simd::kLanes;
using simd::load4;
using simd::pow_block;
using simd::splat4;
using simd::store4;
using simd::vec4;

template <Ties T, class Level>
UALIGN_INLINE void multi_impl(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi,
                              const int64_t* ks, int64_t n_ks, const double* w4, double* mass4, double* values,
                              const int64_t* first_at, const int64_t* next) {
  simd::scatter_levels_x4(row0, m, size, strict_rows, pi, mass4);
  // w = w4 * norm(k), per k, exactly as product_levels_x4 forms it.
  vec4 weight[kMaxFusedKs];
  const vec4 w = load4(w4);
  for (int64_t j = 0; j < n_ks; ++j) {
    const int64_t k = ks[j];
    const double norm = T == Ties::uniform ? 1.0 / static_cast<double>(k + 1) : T == Ties::half ? 0.5 : 1.0;
    weight[j] = w * splat4(norm);
  }
  int64_t k_max = 0;
  for (int64_t j = 0; j < n_ks; ++j) k_max = ks[j] > k_max ? ks[j] : k_max;
  vec4 running = splat4(0.0);
  for (int64_t r0 = size - kLanes; r0 >= 0; r0 -= kLanes) {
    vec4 L[kLanes], E[kLanes], A[kLanes];
    for (int l = kLanes - 1; l >= 0; --l) {
      E[l] = load4(mass4 + 4 * (r0 + l));
      L[l] = running;
      running = running + E[l];
    }
    for (int l = 0; l < kLanes; ++l) A[l] = L[l] + E[l];
    if constexpr (T == Ties::uniform) {
      // geometric_block(A, L, k) for every k: s_j = L s_(j-1) + A^j, read at j = k.
      vec4 s[kLanes], p[kLanes];
      for (int l = 0; l < kLanes; ++l) {
        s[l] = splat4(1.0);
        p[l] = splat4(1.0);
      }
      for (int64_t e = 1; e <= k_max; ++e) {
        for (int l = 0; l < kLanes; ++l) {
          p[l] *= A[l];
          s[l] = L[l] * s[l] + p[l];
        }
        for (int64_t j = first_at[e]; j >= 0; j = next[j])
          for (int l = 0; l < kLanes; ++l) store4(values + ((r0 + l) * n_ks + j) * 4, weight[j] * s[l]);
      }
    } else {
      for (int64_t j = 0; j < n_ks; ++j) {
        vec4 f[kLanes];
        if constexpr (T == Ties::strict || T == Ties::weak) {
          for (int l = 0; l < kLanes; ++l) f[l] = T == Ties::strict ? L[l] : A[l];
          pow_block(f, ks[j]);
        } else {  // half
          vec4 x[kLanes], a[kLanes];
          for (int l = 0; l < kLanes; ++l) {
            x[l] = L[l];
            a[l] = A[l];
          }
          pow_block(x, ks[j]);
          pow_block(a, ks[j]);
          for (int l = 0; l < kLanes; ++l) f[l] = x[l] + a[l];
        }
        for (int l = 0; l < kLanes; ++l) store4(values + ((r0 + l) * n_ks + j) * 4, weight[j] * f[l]);
      }
    }
  }
}

template <class Level>
UALIGN_INLINE void multi_dispatch(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi,
                                  const int64_t* ks, int64_t n_ks, const double* w4, Ties ties, double* mass4,
                                  double* values, const int64_t* first_at, const int64_t* next) {
  switch (ties) {
    case Ties::strict:
      multi_impl<Ties::strict>(row0, m, size, strict_rows, pi, ks, n_ks, w4, mass4, values, first_at, next);
      break;
    case Ties::weak:
      multi_impl<Ties::weak>(row0, m, size, strict_rows, pi, ks, n_ks, w4, mass4, values, first_at, next);
      break;
    case Ties::half:
      multi_impl<Ties::half>(row0, m, size, strict_rows, pi, ks, n_ks, w4, mass4, values, first_at, next);
      break;
    case Ties::uniform:
      multi_impl<Ties::uniform>(row0, m, size, strict_rows, pi, ks, n_ks, w4, mass4, values, first_at, next);
      break;
  }
}

// acc[j*m + y] += the four voters' values of y for k = ks[j]: gather_add_x4's sum,
// (v0 + v1) + (v2 + v3), for every j, reading each voter's level of y once.
template <class Level>
UALIGN_INLINE void gather_multi_impl(const Level* row0, int64_t m, int64_t n_ks, const double* values, double* acc) {
  const Level* row1 = row0 + m;
  const Level* row2 = row1 + m;
  const Level* row3 = row2 + m;
  for (int64_t y = 0; y < m; ++y) {
    const double* v0 = values + static_cast<int64_t>(row0[y]) * n_ks * 4;
    const double* v1 = values + static_cast<int64_t>(row1[y]) * n_ks * 4 + 1;
    const double* v2 = values + static_cast<int64_t>(row2[y]) * n_ks * 4 + 2;
    const double* v3 = values + static_cast<int64_t>(row3[y]) * n_ks * 4 + 3;
    double* out = acc + y;
    for (int64_t j = 0; j < n_ks; ++j) out[j * m] += (v0[4 * j] + v1[4 * j]) + (v2[4 * j] + v3[4 * j]);
  }
}

}  // namespace

#define UALIGN_DEFINE_MULTI_K(Level)                                                                             \
  void product_levels_x4_multi_k(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi, \
                                 const int64_t* ks, int64_t n_ks, const double* w4, Ties ties, double* mass4,    \
                                 double* values, const int64_t* first_at, const int64_t* next) {                 \
    multi_dispatch(row0, m, size, strict_rows, pi, ks, n_ks, w4, ties, mass4, values, first_at, next);           \
  }                                                                                                              \
  void gather_add_x4_multi_k(const Level* row0, int64_t m, int64_t n_ks, const double* values, double* acc) {    \
    gather_multi_impl(row0, m, n_ks, values, acc);                                                               \
  }

UALIGN_DEFINE_MULTI_K(uint8_t)
UALIGN_DEFINE_MULTI_K(uint16_t)
UALIGN_DEFINE_MULTI_K(uint32_t)

}  // namespace ualign::UALIGN_ISA
