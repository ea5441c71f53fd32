#include "level_kernels.hpp"

#include <cmath>
#include <cstring>

#include "simd.hpp"

namespace ualign::UALIGN_ISA {

namespace {

using simd::kLanes;
using simd::load4;
using simd::pow_block;
using simd::splat4;
using simd::store4;
using simd::vec4;

static_assert(kLevelPad == 4 * kLanes, "a block of levels is kLanes vec4");
// Above this k the uniform closed form switches from the O(k) geometric sum.
constexpr int64_t kGeometricMaxK = 64;

// out = sum_{j=0..k} a^j b^(k-j) per lane: all terms nonnegative, so there is no
// cancellation; the lanes are interleaved so their chains run in parallel.
UALIGN_INLINE void geometric_block(const vec4* a, const vec4* b, int64_t k, vec4* out) {
  vec4 s[kLanes], p[kLanes];
  for (int l = 0; l < kLanes; ++l) { s[l] = splat4(1.0); p[l] = splat4(1.0); }
  for (int64_t j = 1; j <= k; ++j) {
    for (int l = 0; l < kLanes; ++l) {
      p[l] *= a[l];
      s[l] = b[l] * s[l] + p[l];
    }
  }
  for (int l = 0; l < kLanes; ++l) out[l] = s[l];
}

template <Ties T>
UALIGN_INLINE void add_single_vs_product_impl(const double* below, const double* mass, int64_t size,
                                              int64_t k, double scale, double* value) {
  const vec4 factor = splat4(T == Ties::uniform ? scale / static_cast<double>(k + 1)
                             : T == Ties::half  ? 0.5 * scale
                                                : scale);
  for (int64_t r = 0; r < size; r += kLevelPad) {
    vec4 L[kLanes], A[kLanes], f[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      L[l] = load4(below + r + 4 * l);
      A[l] = L[l] + load4(mass + r + 4 * l);
    }
    if constexpr (T == Ties::strict) {
      for (int l = 0; l < kLanes; ++l) f[l] = L[l];
      pow_block(f, k);
    } else if constexpr (T == Ties::weak) {
      for (int l = 0; l < kLanes; ++l) f[l] = A[l];
      pow_block(f, k);
    } else if constexpr (T == Ties::half) {
      pow_block(L, k);
      pow_block(A, k);
      for (int l = 0; l < kLanes; ++l) f[l] = L[l] + A[l];
    } else if (k <= kGeometricMaxK) {
      geometric_block(A, L, k, f);
    } else {
      // Large k: S_k(a, L) = a^k (1 - (1-t)^(k+1)) / t with t = E/a, evaluated
      // with expm1/log1p so that small t loses nothing: O(1) instead of O(k).
      for (int l = 0; l < kLanes; ++l) {
        double av[4], out[4];
        store4(av, A[l]);
        const double* E = mass + r + 4 * l;
        for (int i = 0; i < 4; ++i) {
          const double a = av[i], t = a > 0.0 ? E[i] / a : 0.0;
          const double kp1 = static_cast<double>(k + 1);
          const double h = t > 0.0 ? -std::expm1(kp1 * std::log1p(-t)) / t : kp1;
          out[i] = ipow(a, k) * h;
        }
        f[l] = load4(out);
      }
    }
    for (int l = 0; l < kLanes; ++l) store4(value + r + 4 * l, load4(value + r + 4 * l) + factor * f[l]);
  }
}

// below[r] = sum_{r' > r} mass[r']. Four interleaved chains hide the latency of a
// serial running sum; segment totals are then added back, worst segment first.
UALIGN_INLINE void suffix_below(const double* mass, int64_t size, double* below) {
  constexpr int kSegments = 8;
  static_assert(kLevelPad % kSegments == 0, "segments split padded sizes evenly");
  const int64_t seg = size / kSegments;
  double run[kSegments] = {};
  for (int64_t j = seg - 1; j >= 0; --j) {
    for (int s = 0; s < kSegments; ++s) {
      const int64_t r = s * seg + j;
      below[r] = run[s];
      run[s] += mass[r];
    }
  }
  double offset = 0.0;
  for (int s = kSegments - 1; s >= 0; --s) {
    if (s < kSegments - 1) {
      double* b = below + s * seg;
      for (int64_t j = 0; j < seg; ++j) b[j] += offset;
    }
    offset += run[s];
  }
}

template <class Level>
UALIGN_INLINE void add_product_levels_impl(const Level* row, int64_t m, int64_t R, const double* pi,
                                           int64_t k, double scale, Ties ties, double* mass,
                                           double* below, double* value) {
  const int64_t size = padded_levels(R);
  if (R == m) {
    // No ties: levels are a permutation, so the scatter is a plain store.
    for (int64_t y = 0; y < m; ++y) mass[row[y]] = pi[y];
    for (int64_t r = m; r < size; ++r) mass[r] = 0.0;
  } else {
    std::memset(mass, 0, sizeof(double) * static_cast<size_t>(size));
    for (int64_t y = 0; y < m; ++y) mass[row[y]] += pi[y];
  }
  suffix_below(mass, size, below);
  switch (ties) {
    case Ties::strict: add_single_vs_product_impl<Ties::strict>(below, mass, size, k, scale, value); break;
    case Ties::weak: add_single_vs_product_impl<Ties::weak>(below, mass, size, k, scale, value); break;
    case Ties::half: add_single_vs_product_impl<Ties::half>(below, mass, size, k, scale, value); break;
    case Ties::uniform: add_single_vs_product_impl<Ties::uniform>(below, mass, size, k, scale, value); break;
  }
}

template <class Level>
UALIGN_INLINE void gather_add_impl(const Level* row, int64_t m, const double* value, double* acc) {
  for (int64_t y = 0; y < m; ++y) acc[y] += value[row[y]];
}

// f = P[level > pi^(k)] and its partial derivatives in L (mass strictly below)
// and E (mass tied), for one level; every sum has nonnegative terms only.
struct LevelDerivatives {
  double f, df_dL, df_dE;
};

UALIGN_INLINE LevelDerivatives level_derivatives(double L, double E, int64_t k, Ties ties) {
  const double a = L + E, kd = static_cast<double>(k);
  switch (ties) {
    case Ties::strict: {
      const double Lk1 = ipow(L, k - 1);
      return {Lk1 * L, kd * Lk1, 0.0};
    }
    case Ties::weak: {
      const double ak1 = ipow(a, k - 1);
      return {ak1 * a, kd * ak1, kd * ak1};
    }
    case Ties::half: {
      const double Lk1 = ipow(L, k - 1), ak1 = ipow(a, k - 1);
      return {0.5 * (Lk1 * L + ak1 * a), 0.5 * kd * (Lk1 + ak1), 0.5 * kd * ak1};
    }
    case Ties::uniform:
    default: {
      // f = int_0^1 (L + E t)^k dt = S_k / (k+1) with S_j = sum_{i<=j} a^i L^(j-i);
      // df/dL = S_(k-1); df/dE = sum_{j=1..k} j a^(j-1) L^(k-j) / (k+1).
      double s = 1.0, d = 0.0, a_pow = 1.0, s_prev = 0.0;
      for (int64_t j = 1; j <= k; ++j) {
        d = L * d + static_cast<double>(j) * a_pow;
        a_pow *= a;
        s_prev = s;
        s = L * s + a_pow;
      }
      return {s / (kd + 1.0), s_prev, d / (kd + 1.0)};
    }
  }
}

template <class Level>
UALIGN_INLINE void product_levels_with_gradient_impl(const Level* row, int64_t m, int64_t R,
                                                     const double* pi, const double* q, int64_t k,
                                                     double scale, Ties ties, double* mass,
                                                     double* below, double* weight, double* value,
                                                     double* grad) {
  const int64_t size = padded_levels(R);
  std::memset(mass, 0, sizeof(double) * static_cast<size_t>(size));
  std::memset(weight, 0, sizeof(double) * static_cast<size_t>(size));
  for (int64_t y = 0; y < m; ++y) {
    mass[row[y]] += pi[y];
    weight[row[y]] += q[y];
  }
  suffix_below(mass, size, below);
  // d/dpi_z of sum_y q_y f(L_y, E_y): every better level r < level(z) counts z in
  // its L, the own level counts z in its E. A prefix sum over levels.
  double better = 0.0;
  for (int64_t r = 0; r < R; ++r) {
    const LevelDerivatives d = level_derivatives(below[r], mass[r], k, ties);
    value[r] = scale * d.f;
    grad[r] = scale * (better + weight[r] * d.df_dE);
    better += weight[r] * d.df_dL;
  }
}

// P[level > pi^(k)] for kLanes vec4 of (L, E) pairs at once, for a fixed
// convention; the lanes are independent chains, interleaved for latency.
template <Ties T>
UALIGN_INLINE void single_vs_product_lanes(const vec4* L, const vec4* E, int64_t k, vec4* out) {
  vec4 A[kLanes];
  for (int l = 0; l < kLanes; ++l) A[l] = L[l] + E[l];
  if constexpr (T == Ties::strict || T == Ties::weak) {
    for (int l = 0; l < kLanes; ++l) out[l] = T == Ties::strict ? L[l] : A[l];
    pow_block(out, k);
  } else if constexpr (T == Ties::half) {
    vec4 x[kLanes];
    for (int l = 0; l < kLanes; ++l) x[l] = L[l];
    pow_block(x, k);
    pow_block(A, k);
    for (int l = 0; l < kLanes; ++l) out[l] = x[l] + A[l];
  } else {
    vec4 Lc[kLanes];
    for (int l = 0; l < kLanes; ++l) Lc[l] = L[l];
    geometric_block(A, Lc, k, out);
  }
}

// Four voters at once, their levels interleaved (slot 4*r + v): the running sum
// over levels, the closed form and the weighting are one vec4 per level, and the
// scatter reads each policy entry once for the four voters.
template <Ties T, class Level>
UALIGN_INLINE void product_levels_x4_impl(const Level* row0, int64_t m, int64_t size, bool strict_rows,
                                          const double* pi, int64_t k, const double* w4,
                                          double* mass4, double* value4) {
  simd::scatter_levels_x4(row0, m, size, strict_rows, pi, mass4);
  const double norm = T == Ties::uniform ? 1.0 / static_cast<double>(k + 1) : T == Ties::half ? 0.5 : 1.0;
  const vec4 w = load4(w4) * splat4(norm);
  // Levels from the worst up, kLanes at a time: the running sum is the only
  // serial dependency; the closed forms of the kLanes levels run side by side.
  vec4 running = splat4(0.0);
  for (int64_t r0 = size - kLanes; r0 >= 0; r0 -= kLanes) {
    vec4 L[kLanes], E[kLanes], f[kLanes];
    for (int l = kLanes - 1; l >= 0; --l) {
      E[l] = load4(mass4 + 4 * (r0 + l));
      L[l] = running;
      running = running + E[l];
    }
    single_vs_product_lanes<T>(L, E, k, f);
    for (int l = 0; l < kLanes; ++l) store4(value4 + 4 * (r0 + l), w * f[l]);
  }
}

template <class Level>
UALIGN_INLINE void gather_add_x4_impl(const Level* row0, int64_t m, const double* value4, double* acc) {
  const Level* row1 = row0 + m;
  const Level* row2 = row1 + m;
  const Level* row3 = row2 + m;
  for (int64_t y = 0; y < m; ++y) {
    acc[y] += (value4[4 * static_cast<int64_t>(row0[y])] + value4[4 * static_cast<int64_t>(row1[y]) + 1]) +
              (value4[4 * static_cast<int64_t>(row2[y]) + 2] + value4[4 * static_cast<int64_t>(row3[y]) + 3]);
  }
}

template <class Level>
UALIGN_INLINE void product_levels_x4_dispatch(const Level* row0, int64_t m, int64_t size, bool strict_rows,
                                              const double* pi, int64_t k, const double* w4, Ties ties,
                                              double* mass4, double* value4) {
  switch (ties) {
    case Ties::strict: product_levels_x4_impl<Ties::strict>(row0, m, size, strict_rows, pi, k, w4, mass4, value4); break;
    case Ties::weak: product_levels_x4_impl<Ties::weak>(row0, m, size, strict_rows, pi, k, w4, mass4, value4); break;
    case Ties::half: product_levels_x4_impl<Ties::half>(row0, m, size, strict_rows, pi, k, w4, mass4, value4); break;
    case Ties::uniform: product_levels_x4_impl<Ties::uniform>(row0, m, size, strict_rows, pi, k, w4, mass4, value4); break;
  }
}

}  // namespace

#define UALIGN_DEFINE_LEVEL_KERNELS(Level)                                                          \
  void add_product_levels(const Level* row, int64_t m, int64_t R,              \
                                              const double* pi, int64_t k, double scale, Ties ties, \
                                              double* mass, double* below, double* value) {         \
    add_product_levels_impl(row, m, R, pi, k, scale, ties, mass, below, value);                     \
  }                                                                                                 \
  void gather_add(const Level* row, int64_t m, const double* value, double* acc) { \
    gather_add_impl(row, m, value, acc);                                                            \
  }                                                                                                 \
  void product_levels_with_gradient(                                            \
      const Level* row, int64_t m, int64_t R, const double* pi, const double* q, int64_t k,         \
      double scale, Ties ties, double* mass, double* below, double* weight, double* value,          \
      double* grad) {                                                                               \
    product_levels_with_gradient_impl(row, m, R, pi, q, k, scale, ties, mass, below, weight, value, \
                                      grad);                                                        \
  }                                                                                                 \
  void product_levels_x4(const Level* row0, int64_t m, int64_t size,           \
                                             bool strict_rows, const double* pi, int64_t k,         \
                                             const double* w4, Ties ties, double* mass4,            \
                                             double* value4) {                                      \
    product_levels_x4_dispatch(row0, m, size, strict_rows, pi, k, w4, ties, mass4, value4);         \
  }                                                                                                 \
  void gather_add_x4(const Level* row0, int64_t m, const double* value4,       \
                                         double* acc) {                                             \
    gather_add_x4_impl(row0, m, value4, acc);                                                       \
  }

UALIGN_DEFINE_LEVEL_KERNELS(uint8_t)
UALIGN_DEFINE_LEVEL_KERNELS(uint16_t)
UALIGN_DEFINE_LEVEL_KERNELS(uint32_t)

}  // namespace ualign::UALIGN_ISA
