#include "level_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

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

// s_e = sum_{j=0..e} a^j b^(e-j) per lane, by s_e = b s_(e-1) + a^e (s_0 = 1), for
// e = 1..k, calling at(e, s) after each step (the several-k kernel reads s at each k
// of its list) and leaving s_k in out. All terms are nonnegative, so there is no
// cancellation; the lanes are interleaved so their chains run in parallel.
template <class At>
UALIGN_INLINE void geometric_steps(const vec4* a, const vec4* b, int64_t k, vec4* out, At&& at) {
  vec4 p[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    out[l] = splat4(1.0);
    p[l] = splat4(1.0);
  }
  for (int64_t e = 1; e <= k; ++e) {
    for (int l = 0; l < kLanes; ++l) {
      p[l] *= a[l];
      out[l] = b[l] * out[l] + p[l];
    }
    at(e, out);
  }
}

UALIGN_INLINE void geometric_block(const vec4* a, const vec4* b, int64_t k, vec4* out) {
  geometric_steps(a, b, k, out, [](int64_t, const vec4*) {});
}

// add_single_vs_product_impl for k > kDirectPowMaxK. Masses are taken as fractions
// of the policy's total S. F_r = P[all k draws at levels >= r] = ((L+E)/S)^k comes
// from the level's "at or below" fraction (a suffix sum) and its complement, the
// mass of the better levels (a prefix sum) computed directly, so F_0 = 1 exactly
// and no rounding of 1 - x is ever raised to the k-th power (pow_fraction). Then
//   strict F_(r+1),  weak F_r,  half (F_(r+1) + F_r)/2,
//   uniform int_0^1 ((L + E t)/S)^k dt = F_r (1 - (1-t)^(k+1)) / (t (k+1)), t = E/(L+E),
// the last with expm1/log1p so that small t loses nothing: O(1) per level. F is
// nonincreasing in r: once it underflows to 0, so does every worse level's value.
template <Ties T>
UALIGN_INLINE void add_single_vs_product_large_k(const double* below, const double* mass, int64_t size, int64_t k,
                                                 double scale, double* value) {
  const double total = below[0] + mass[0];
  double above = 0.0;  // mass of the levels better than r
  double F = 1.0;      // F_r
  for (int64_t r = 0; r < size && F > 0.0; ++r) {
    const double L = below[r], E = mass[r];
    above += E;  // now the complement of L
    const double F_next = pow_fraction(L / total, above / total, k);
    double f;
    if constexpr (T == Ties::strict) {
      f = F_next;
    } else if constexpr (T == Ties::weak) {
      f = F;
    } else if constexpr (T == Ties::half) {
      f = 0.5 * (F_next + F);
    } else {
      const double kp1 = static_cast<double>(k) + 1.0;  // exact: k <= 2^53 - 1
      const double A = L + E, t = A > 0.0 ? E / A : 0.0;
      const double h = t > 0.0 ? -std::expm1(kp1 * std::log1p(-t)) / t : kp1;
      f = F * h / kp1;
    }
    value[r] += scale * f;
    F = F_next;
  }
}

template <Ties T>
UALIGN_INLINE void add_single_vs_product_impl(const double* below, const double* mass, int64_t size, int64_t k,
                                              double scale, double* value) {
  if (k > kDirectPowMaxK) {
    add_single_vs_product_large_k<T>(below, mass, size, k, scale, value);
    return;
  }
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
    } else {
      geometric_block(A, L, k, f);
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
UALIGN_INLINE void add_product_levels_impl(const Level* row, int64_t m, int64_t R, const double* pi, int64_t k,
                                           double scale, Ties ties, double* mass, double* below, double* value) {
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
  with_ties(ties, [&](auto T) { add_single_vs_product_impl<decltype(T)::value>(below, mass, size, k, scale, value); });
}

template <class Level>
UALIGN_INLINE void gather_add_impl(const Level* row, int64_t m, const double* value, double* acc) {
  for (int64_t y = 0; y < m; ++y) acc[y] += value[row[y]];
}

// ---------------------------------------------------------------------------
// Gradients. For one voter, sum_y q_y u_y = sum_r W_r f(L_r, E_r) with W_r the
// q-mass of level r; a response z at level s is in E_s and in L_r for every
// better level r < s, so d/dpi_z = W_s df/dE(s) + sum_{r<s} W_r df/dL(r): a
// prefix sum over levels from the best one.
// ---------------------------------------------------------------------------

// df/dL and df/dE for k <= kDirectPowMaxK, per lane (V = vec4 with kLanes lanes,
// or double with one): polynomials with nonnegative terms only.
template <class V>
constexpr int kLanesOf = std::is_same_v<V, double> ? 1 : kLanes;

template <class V>
UALIGN_INLINE V splat(double x) {
  if constexpr (std::is_same_v<V, double>)
    return x;
  else
    return splat4(x);
}

UALIGN_INLINE void power_lanes(vec4* x, int64_t k) { pow_block(x, k); }
UALIGN_INLINE void power_lanes(double* x, int64_t k) { *x = ipow(*x, k); }

template <Ties T, class V>
UALIGN_INLINE void level_derivative_lanes(const V* L, const V* E, int64_t k, V* dL, V* dE) {
  constexpr int N = kLanesOf<V>;
  const V kd = splat<V>(static_cast<double>(k));
  if constexpr (T == Ties::strict) {  // f = L^k
    for (int l = 0; l < N; ++l) dL[l] = L[l];
    power_lanes(dL, k - 1);
    for (int l = 0; l < N; ++l) {
      dL[l] = kd * dL[l];
      dE[l] = splat<V>(0.0);
    }
  } else if constexpr (T == Ties::weak) {  // f = (L+E)^k
    for (int l = 0; l < N; ++l) dE[l] = L[l] + E[l];
    power_lanes(dE, k - 1);
    for (int l = 0; l < N; ++l) {
      dE[l] = kd * dE[l];
      dL[l] = dE[l];
    }
  } else if constexpr (T == Ties::half) {  // f = (L^k + (L+E)^k) / 2
    const V half_k = splat<V>(0.5 * static_cast<double>(k));
    for (int l = 0; l < N; ++l) {
      dL[l] = L[l];
      dE[l] = L[l] + E[l];
    }
    power_lanes(dL, k - 1);
    power_lanes(dE, k - 1);
    for (int l = 0; l < N; ++l) {
      dL[l] = half_k * (dL[l] + dE[l]);
      dE[l] = half_k * dE[l];
    }
  } else {
    // f = int_0^1 (L + E t)^k dt = S_k / (k+1), S_j = sum_{i<=j} a^i L^(j-i), a = L+E:
    // df/dL = S_(k-1), df/dE = D_k / (k+1) with D_j = sum_{i=1..j} i a^(i-1) L^(j-i)
    // = a D_(j-1) + S_(j-1).
    V a[N], p[N], s[N], d[N];
    for (int l = 0; l < N; ++l) {
      a[l] = L[l] + E[l];
      p[l] = splat<V>(1.0);
      s[l] = splat<V>(1.0);
      d[l] = splat<V>(0.0);
    }
    for (int64_t j = 1; j < k; ++j) {
      for (int l = 0; l < N; ++l) {
        d[l] = a[l] * d[l] + s[l];
        p[l] = p[l] * a[l];
        s[l] = L[l] * s[l] + p[l];
      }
    }
    const V norm = splat<V>(1.0 / static_cast<double>(k + 1));
    for (int l = 0; l < N; ++l) {
      dL[l] = s[l];
      dE[l] = norm * (a[l] * d[l] + s[l]);
    }
  }
}

// f, df/dL, df/dE of one level for k > kDirectPowMaxK in O(1): powers in log
// space, x^j = exp(j log x), whose relative error stays ~|j log x| eps (below
// ~750 eps while the result is a normal number) where j-fold products and
// repeated squaring compound rounding errors to ~j eps.
struct LevelDerivatives {
  double f, df_dL, df_dE;
};

// x^(k-1) from log x, and its multiples c x^(k-1) (1/2 < c <= k < 2^63): plain
// products while x^(k-1) is a normal number; below that, exp((k-1) log x + log c),
// which keeps the digits a subnormal power would lose. Below e^-900 every such
// multiple underflows: exact zeros (also for x = 0, log x = -inf; never 0 * inf),
// without slow subnormal arithmetic.
class PowerKm1 {
 public:
  PowerKm1(double log_x, int64_t k)
      : exponent_(static_cast<double>(k - 1) * log_x), value_(zero() ? 0.0 : std::exp(exponent_)) {}
  bool zero() const { return exponent_ < -900.0; }
  double value() const { return value_; }
  double times(double c) const {
    if (value_ >= std::numeric_limits<double>::min()) return value_ * c;
    return zero() ? 0.0 : std::exp(exponent_ + std::log(c));
  }

 private:
  double exponent_, value_;
};

// log(x + y) for x, y >= 0 with x + y > 0, without rounding the sum first (k eps
// would be the relative error of (x+y)^k): hi + lo = x + y exactly (Knuth's
// TwoSum) and log(hi + lo) = log(hi) + lo/hi to within 2^-107.
UALIGN_INLINE double log_of_sum(double x, double y, double hi) {
  const double y_part = hi - x;
  const double lo = (x - (hi - y_part)) + (y - y_part);
  return std::log(hi) + lo / hi;
}

constexpr double inverse_factorial(int j) {
  double factorial = 1.0;  // exact up to 18!
  for (int i = 2; i <= j; ++i) factorial *= i;
  return 1.0 / factorial;
}

// e^z - 1 - z for -1/2 < z <= 0 to full relative accuracy, where expm1(z) - z
// would cancel: z^2 sum_{i<16} z^i / (i+2)! (the rest is below 3e-21 of the
// sum), by Estrin's scheme (a short dependency chain).
UALIGN_INLINE double expm1_minus_identity_series(double z) {
  static constexpr double c[16] = {
      inverse_factorial(2),  inverse_factorial(3),  inverse_factorial(4),  inverse_factorial(5),
      inverse_factorial(6),  inverse_factorial(7),  inverse_factorial(8),  inverse_factorial(9),
      inverse_factorial(10), inverse_factorial(11), inverse_factorial(12), inverse_factorial(13),
      inverse_factorial(14), inverse_factorial(15), inverse_factorial(16), inverse_factorial(17)};
  const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  double p[8], q[4];
  for (int i = 0; i < 8; ++i) p[i] = c[2 * i] + c[2 * i + 1] * z;
  for (int i = 0; i < 4; ++i) q[i] = p[2 * i] + p[2 * i + 1] * z2;
  return z2 * ((q[0] + q[1] * z4) + (q[2] + q[3] * z4) * z8);
}

// e^z - 1 - z >= 0 for z <= 0; for z <= -1/2 the difference loses under 3 bits.
UALIGN_INLINE double expm1_minus_identity(double z) {
  return z > -0.5 ? expm1_minus_identity_series(z) : std::expm1(z) - z;
}

template <Ties T>
UALIGN_INLINE LevelDerivatives large_k_level(double L, double E, int64_t k) {
  const double kd = static_cast<double>(k);
  if constexpr (T == Ties::strict) {
    const PowerKm1 P(std::log(L), k);  // log 0 = -inf: every power is then 0
    return {P.value() * L, P.times(kd), 0.0};
  }
  const double a = L + E;
  if (a == 0.0) return {0.0, 0.0, 0.0};
  const PowerKm1 Pa(log_of_sum(L, E, a), k);
  if (Pa.zero()) return {0.0, 0.0, 0.0};  // and so is every power of L <= a
  if constexpr (T == Ties::weak) {
    const double slope = Pa.times(kd);
    return {Pa.value() * a, slope, slope};
  } else if constexpr (T == Ties::half) {
    const PowerKm1 PL(std::log(L), k);
    const double slope = Pa.times(0.5 * kd);
    return {0.5 * (PL.value() * L + Pa.value() * a), PL.times(0.5 * kd) + slope, slope};
  } else {
    // With t = E/a, x = 1 - t = L/a, u = log x and n = k+1:
    //   S_j = a^j H_(j+1), H_i = sum_{l<i} x^l = (1 - x^i)/t = -expm1(i u)/t,
    //   D = a^(k-1) G, G = sum_{l<k} (k-l) x^l = (k - n x + x^n) / t^2,
    // and f = a^k H_n / n, df/dL = a^(k-1) H_k, df/dE = a^(k-1) G / n. The
    // numerator of G is written e^(nu) - 1 - nu - n (e^u - 1 - u) for u >= -1,
    // where the subtracted term is < 0.38 of the first; below, n x < 0.38 k in
    // k - n x + x^n. Either way under 3 bits are lost to cancellation.
    const double n = kd + 1.0, t = E / a, x = L / a;  // (k + 1 would overflow at INT64_MAX)
    const double u = t <= 0.5 ? std::log1p(-t) : std::log(x);
    double H_n = n, H_k = kd, G_over_n = 0.5 * kd;  // t = 0: sums of equal terms
    if (t > 0.0) {
      const double expm1_nu = std::expm1(n * u);
      H_n = -expm1_nu / t;
      H_k = -std::expm1(kd * u) / t;
      // n t < 2^-53: G = k n / 2 to within (k-1) t / 3 relative (t^2 may underflow)
      if (n * t >= 0x1p-53) {
        const double numerator =
            u >= -1.0 ? expm1_minus_identity(n * u) - n * expm1_minus_identity(u) : (kd - n * x) + (1.0 + expm1_nu);
        G_over_n = numerator / (t * t) / n;
      }
    }
    return {Pa.value() * a * (H_n / n), Pa.times(H_k), Pa.times(G_over_n)};
  }
}

template <Ties T>
UALIGN_INLINE void large_k_lanes(const vec4* L, const vec4* E, int64_t k, vec4* f, vec4* dL, vec4* dE) {
  for (int l = 0; l < kLanes; ++l) {
    double Lv[4], Ev[4], fv[4], dLv[4], dEv[4];
    store4(Lv, L[l]);
    store4(Ev, E[l]);
    for (int i = 0; i < 4; ++i) {
      const LevelDerivatives d = large_k_level<T>(Lv[i], Ev[i], k);
      fv[i] = d.f;
      dLv[i] = d.df_dL;
      dEv[i] = d.df_dE;
    }
    f[l] = load4(fv);
    dL[l] = load4(dLv);
    dE[l] = load4(dEv);
  }
}

// f, df/dL and df/dE of one level: the polynomials up to kDirectPowMaxK, the
// O(1) closed forms above.
template <Ties T>
UALIGN_INLINE LevelDerivatives level_derivatives_of(double L, double E, int64_t k) {
  if (k > kDirectPowMaxK) return large_k_level<T>(L, E, k);
  LevelDerivatives d{single_vs_product(L, E, k, T), 0.0, 0.0};
  level_derivative_lanes<T, double>(&L, &E, k, &d.df_dL, &d.df_dE);
  return d;
}

// One voter: value[r] = scale * f and grad[r] = scale * d/dpi_z sum_y q_y u_y for
// z at level r. For k <= kDirectPowMaxK the values are those of
// add_product_levels (bit for bit).
template <Ties T, class Level>
UALIGN_INLINE void product_levels_with_gradient_of(const Level* row, int64_t m, int64_t R, const double* pi,
                                                   const double* q, int64_t k, double scale, double* mass,
                                                   double* below, double* weight, double* value, double* grad) {
  const int64_t size = padded_levels(R);
  std::memset(mass, 0, sizeof(double) * static_cast<size_t>(size));
  std::memset(weight, 0, sizeof(double) * static_cast<size_t>(size));
  for (int64_t y = 0; y < m; ++y) {
    mass[row[y]] += pi[y];
    weight[row[y]] += q[y];
  }
  suffix_below(mass, size, below);
  const bool large = k > kDirectPowMaxK;
  if (!large) {
    std::fill_n(value, size, 0.0);
    add_single_vs_product_impl<T>(below, mass, size, k, scale, value);
  }
  double better = 0.0;
  for (int64_t r = 0; r < R; ++r) {
    const LevelDerivatives d = level_derivatives_of<T>(below[r], mass[r], k);
    if (large) value[r] = scale * d.f;
    grad[r] = scale * (better + weight[r] * d.df_dE);
    better += weight[r] * d.df_dL;
  }
}

// scale * (df/dL, df/dE) at the level of each response of `responses` for one voter:
// the Jacobian entries of that response (d u / d pi_z = dL for z strictly worse
// than it and dE for z tied with it). Only those levels are evaluated, 4 * kLanes
// at a time through level_derivative_lanes (per lane the arithmetic of one level).
template <Ties T, class Level>
UALIGN_INLINE void product_level_derivatives_of(const Level* row, int64_t m, int64_t R, const double* pi, int64_t k,
                                                double scale, const int64_t* responses, int64_t n_responses,
                                                double* mass, double* below, double* dL, double* dE) {
  const int64_t size = padded_levels(R);
  std::memset(mass, 0, sizeof(double) * static_cast<size_t>(size));
  for (int64_t y = 0; y < m; ++y) mass[row[y]] += pi[y];
  suffix_below(mass, size, below);
  if (k > kDirectPowMaxK) {
    for (int64_t j = 0; j < n_responses; ++j) {
      const Level r = row[responses[j]];
      const LevelDerivatives d = large_k_level<T>(below[r], mass[r], k);
      dL[j] = scale * d.df_dL;
      dE[j] = scale * d.df_dE;
    }
    return;
  }
  constexpr int64_t kBlock = 4 * kLanes;
  for (int64_t j0 = 0; j0 < n_responses; j0 += kBlock) {
    const int64_t count = std::min(kBlock, n_responses - j0);
    double Lv[kBlock] = {}, Ev[kBlock] = {}, dLv[kBlock], dEv[kBlock];
    for (int64_t j = 0; j < count; ++j) {
      const Level r = row[responses[j0 + j]];
      Lv[j] = below[r];
      Ev[j] = mass[r];
    }
    vec4 L[kLanes], E[kLanes], dL4[kLanes], dE4[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      L[l] = load4(Lv + 4 * l);
      E[l] = load4(Ev + 4 * l);
    }
    level_derivative_lanes<T, vec4>(L, E, k, dL4, dE4);
    for (int l = 0; l < kLanes; ++l) {
      store4(dLv + 4 * l, dL4[l]);
      store4(dEv + 4 * l, dE4[l]);
    }
    for (int64_t j = 0; j < count; ++j) {
      dL[j0 + j] = scale * dLv[j];
      dE[j0 + j] = scale * dEv[j];
    }
  }
}

// Levels as doubles and a select without branches: the inner loop vectorises.
template <class Level>
UALIGN_INLINE void add_jacobian_entries_impl(const Level* row, const int64_t* rows, int64_t n_rows, const int64_t* cols,
                                             int64_t n_cols, const double* dL, const double* dE, double* col_levels,
                                             double* acc) {
  for (int64_t c = 0; c < n_cols; ++c) col_levels[c] = static_cast<double>(row[cols[c]]);
  for (int64_t r = 0; r < n_rows; ++r) {
    const double level = static_cast<double>(row[rows[r]]), worse = dL[r], tied = dE[r];
    double* target = acc + r * n_cols;
    for (int64_t c = 0; c < n_cols; ++c)
      target[c] += (col_levels[c] > level ? worse : 0.0) + (col_levels[c] == level ? tied : 0.0);
  }
}

template <class Level>
UALIGN_INLINE void product_level_derivatives_impl(const Level* row, int64_t m, int64_t R, const double* pi, int64_t k,
                                                  double scale, Ties ties, const int64_t* responses,
                                                  int64_t n_responses, double* mass, double* below, double* dL,
                                                  double* dE) {
  with_ties(ties, [&](auto T) {
    product_level_derivatives_of<decltype(T)::value>(row, m, R, pi, k, scale, responses, n_responses, mass, below, dL,
                                                     dE);
  });
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

// The constant factor of P[level > pi^(k)] left out by single_vs_product_lanes.
template <Ties T>
constexpr double product_norm(int64_t k) {
  return T == Ties::uniform ? 1.0 / static_cast<double>(k + 1) : T == Ties::half ? 0.5 : 1.0;
}

// Four voters at once, their levels interleaved (slot 4*r + v), for every k of a
// list: values[4 * (r * n_ks + j) + v] = w4[v] * P[level r of voter v > pi^(ks[j])].
// The running sum over levels, the closed form and the weighting are one vec4 per
// level, and the scatter reads each policy entry once for the four voters. Under
// uniform ties the geometric recurrence runs once to the largest k and is read at
// each k of the list (first_at/next), which turns sum_k O(k) into O(max k) per
// level; each value has the bits of the list {k} alone.
template <Ties T, class Level>
UALIGN_INLINE void product_levels_x4_impl(const Level* row0, int64_t m, int64_t size, bool strict_rows,
                                          const double* pi, const int64_t* ks, int64_t n_ks, const int64_t* first_at,
                                          const int64_t* next, const double* w4, double* mass4, double* values) {
  simd::scatter_levels_x4(row0, m, size, strict_rows, pi, mass4);
  vec4 weight[kMaxFusedKs];
  int64_t k_max = 0;
  for (int64_t j = 0; j < n_ks; ++j) {
    weight[j] = load4(w4) * splat4(product_norm<T>(ks[j]));
    k_max = std::max(k_max, ks[j]);
  }
  // Levels from the worst up, kLanes at a time: the running sum is the only
  // serial dependency; the closed forms of the kLanes levels run side by side.
  // The values of level r land at or above slot r, so mass4 may be values.
  vec4 running = splat4(0.0);
  for (int64_t r0 = size - kLanes; r0 >= 0; r0 -= kLanes) {
    vec4 L[kLanes], E[kLanes], f[kLanes];
    for (int l = kLanes - 1; l >= 0; --l) {
      E[l] = load4(mass4 + 4 * (r0 + l));
      L[l] = running;
      running = running + E[l];
    }
    const auto store = [&](int64_t j, const vec4* level_values) {
      for (int l = 0; l < kLanes; ++l) store4(values + 4 * ((r0 + l) * n_ks + j), weight[j] * level_values[l]);
    };
    if constexpr (T == Ties::uniform) {
      vec4 A[kLanes];
      for (int l = 0; l < kLanes; ++l) A[l] = L[l] + E[l];
      geometric_steps(A, L, k_max, f, [&](int64_t e, const vec4* s) {
        for (int64_t j = first_at[e]; j >= 0; j = next[j]) store(j, s);
      });
    } else {
      for (int64_t j = 0; j < n_ks; ++j) {
        single_vs_product_lanes<T>(L, E, ks[j], f);
        store(j, f);
      }
    }
  }
}

template <class Level>
UALIGN_INLINE void product_levels_with_gradient_impl(const Level* row, int64_t m, int64_t R, const double* pi,
                                                     const double* q, int64_t k, double scale, Ties ties, double* mass,
                                                     double* below, double* weight, double* value, double* grad) {
  with_ties(ties, [&](auto T) {
    product_levels_with_gradient_of<decltype(T)::value>(row, m, R, pi, q, k, scale, mass, below, weight, value, grad);
  });
}

// product_levels_x4 with the gradient, in one pass: value4 as product_levels_x4
// computes it (bit for bit for k <= kDirectPowMaxK) and grad4[4r+v] = w4[v] *
// d/dpi_z sum_y q_y u_y for z at level r of voter v. value4 first holds the
// level masses, grad4 the level q-weights; slope4 (scratch) the W df/dL terms.
template <Ties T, class Level>
UALIGN_INLINE void product_levels_with_gradient_x4_impl(const Level* row0, int64_t m, int64_t size, bool strict_rows,
                                                        const double* pi, const double* q, int64_t k, const double* w4,
                                                        double* value4, double* grad4, double* slope4) {
  simd::scatter_levels_x4(row0, m, size, strict_rows, pi, value4);
  simd::scatter_levels_x4(row0, m, size, strict_rows, q, grad4);
  const bool large = k > kDirectPowMaxK;  // the closed forms there carry their normalisation
  const vec4 w = load4(w4);
  const vec4 w_value = large ? w : w * splat4(product_norm<T>(k));
  vec4 running = splat4(0.0);
  for (int64_t r0 = size - kLanes; r0 >= 0; r0 -= kLanes) {
    vec4 L[kLanes], E[kLanes], f[kLanes], dL[kLanes], dE[kLanes];
    for (int l = kLanes - 1; l >= 0; --l) {
      E[l] = load4(value4 + 4 * (r0 + l));
      L[l] = running;
      running = running + E[l];
    }
    if (large) {
      large_k_lanes<T>(L, E, k, f, dL, dE);
    } else {
      single_vs_product_lanes<T>(L, E, k, f);
      level_derivative_lanes<T, vec4>(L, E, k, dL, dE);
    }
    for (int l = 0; l < kLanes; ++l) {
      const int64_t at = 4 * (r0 + l);
      const vec4 W = load4(grad4 + at);
      store4(value4 + at, w_value * f[l]);
      store4(grad4 + at, W * dE[l]);
      store4(slope4 + at, W * dL[l]);
    }
  }
  vec4 better = splat4(0.0);
  for (int64_t at = 0; at < 4 * size; at += 4) {
    store4(grad4 + at, w * (better + load4(grad4 + at)));
    better = better + load4(slope4 + at);
  }
}

template <class Level>
UALIGN_INLINE void product_levels_with_gradient_x4_dispatch(const Level* row0, int64_t m, int64_t size,
                                                            bool strict_rows, const double* pi, const double* q,
                                                            int64_t k, const double* w4, Ties ties, double* value4,
                                                            double* grad4, double* slope4) {
  with_ties(ties, [&](auto T) {
    product_levels_with_gradient_x4_impl<decltype(T)::value>(row0, m, size, strict_rows, pi, q, k, w4, value4, grad4,
                                                             slope4);
  });
}

// acc[j*m + y] += (v0 + v1) + (v2 + v3), the four voters' values of y for ks[j],
// reading each voter's level of y once. Count is int64_t, or a compile-time 1 for
// the common single k.
template <class Level, class Count>
UALIGN_INLINE void gather_add_x4_impl(const Level* row0, int64_t m, Count n_ks, const double* values, double* acc) {
  const Level* row1 = row0 + m;
  const Level* row2 = row1 + m;
  const Level* row3 = row2 + m;
  const int64_t stride = 4 * static_cast<int64_t>(n_ks);
  for (int64_t y = 0; y < m; ++y) {
    const double* v0 = values + static_cast<int64_t>(row0[y]) * stride;
    const double* v1 = values + static_cast<int64_t>(row1[y]) * stride + 1;
    const double* v2 = values + static_cast<int64_t>(row2[y]) * stride + 2;
    const double* v3 = values + static_cast<int64_t>(row3[y]) * stride + 3;
    for (int64_t j = 0; j < static_cast<int64_t>(n_ks); ++j)
      acc[j * m + y] += (v0[4 * j] + v1[4 * j]) + (v2[4 * j] + v3[4 * j]);
  }
}

template <class Level>
UALIGN_INLINE void product_levels_x4_dispatch(const Level* row0, int64_t m, int64_t size, bool strict_rows,
                                              const double* pi, const int64_t* ks, int64_t n_ks,
                                              const int64_t* first_at, const int64_t* next, const double* w4, Ties ties,
                                              double* mass4, double* values) {
  with_ties(ties, [&](auto T) {
    product_levels_x4_impl<decltype(T)::value>(row0, m, size, strict_rows, pi, ks, n_ks, first_at, next, w4, mass4,
                                               values);
  });
}

}  // namespace

#define UALIGN_DEFINE_LEVEL_KERNELS(Level)                                                                             \
  void add_product_levels(const Level* row, int64_t m, int64_t R, const double* pi, int64_t k, double scale,           \
                          Ties ties, double* mass, double* below, double* value) {                                     \
    add_product_levels_impl(row, m, R, pi, k, scale, ties, mass, below, value);                                        \
  }                                                                                                                    \
  void gather_add(const Level* row, int64_t m, const double* value, double* acc) {                                     \
    gather_add_impl(row, m, value, acc);                                                                               \
  }                                                                                                                    \
  void product_levels_with_gradient(const Level* row, int64_t m, int64_t R, const double* pi, const double* q,         \
                                    int64_t k, double scale, Ties ties, double* mass, double* below, double* weight,   \
                                    double* value, double* grad) {                                                     \
    product_levels_with_gradient_impl(row, m, R, pi, q, k, scale, ties, mass, below, weight, value, grad);             \
  }                                                                                                                    \
  void product_level_derivatives(const Level* row, int64_t m, int64_t R, const double* pi, int64_t k, double scale,    \
                                 Ties ties, const int64_t* responses, int64_t n_responses, double* mass,               \
                                 double* below, double* dL, double* dE) {                                              \
    product_level_derivatives_impl(row, m, R, pi, k, scale, ties, responses, n_responses, mass, below, dL, dE);        \
  }                                                                                                                    \
  void add_jacobian_entries(const Level* row, const int64_t* rows, int64_t n_rows, const int64_t* cols,                \
                            int64_t n_cols, const double* dL, const double* dE, double* col_levels, double* acc) {     \
    add_jacobian_entries_impl(row, rows, n_rows, cols, n_cols, dL, dE, col_levels, acc);                               \
  }                                                                                                                    \
  void product_levels_x4(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi,               \
                         const int64_t* ks, int64_t n_ks, const int64_t* first_at, const int64_t* next,                \
                         const double* w4, Ties ties, double* mass4, double* values) {                                 \
    product_levels_x4_dispatch(row0, m, size, strict_rows, pi, ks, n_ks, first_at, next, w4, ties, mass4, values);     \
  }                                                                                                                    \
  void gather_add_x4(const Level* row0, int64_t m, int64_t n_ks, const double* values, double* acc) {                  \
    if (n_ks == 1) {                                                                                                   \
      gather_add_x4_impl(row0, m, std::integral_constant<int64_t, 1>(), values, acc);                                  \
    } else {                                                                                                           \
      gather_add_x4_impl(row0, m, n_ks, values, acc);                                                                  \
    }                                                                                                                  \
  }                                                                                                                    \
  void product_levels_with_gradient_x4(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi, \
                                       const double* q, int64_t k, const double* w4, Ties ties, double* value4,        \
                                       double* grad4, double* slope4) {                                                \
    product_levels_with_gradient_x4_dispatch(row0, m, size, strict_rows, pi, q, k, w4, ties, value4, grad4, slope4);   \
  }

UALIGN_DEFINE_LEVEL_KERNELS(uint8_t)
UALIGN_DEFINE_LEVEL_KERNELS(uint16_t)
UALIGN_DEFINE_LEVEL_KERNELS(uint32_t)

}  // namespace ualign::UALIGN_ISA
