// Tie conventions and the small closed forms shared by kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

namespace ualign {

enum class Ties : int { uniform = 0, half = 1, strict = 2, weak = 3 };

inline Ties ties_from_int(int code) {
  if (code < 0 || code > 3) throw std::invalid_argument("ties: unknown tie convention code");
  return static_cast<Ties>(code);
}

// x^k for integer k >= 0 by squaring.
inline double ipow(double x, int64_t k) {
  double result = 1.0;
  while (k > 0) {
    if (k & 1) result *= x;
    x *= x;
    k >>= 1;
  }
  return result;
}

// Above this k the closed forms switch from direct powers of level masses to
// their complement forms (pow_fraction): a mass x that is 1 - O(eps) after
// rounding, raised to the k-th power, is off by O(k eps), which stays far below
// 1e-12 only for small k. Also the largest k of the O(k) geometric sum.
inline constexpr int64_t kDirectPowMaxK = 64;

// x^k for a fraction x of a policy's mass given with its complement c = 1 - x,
// each computed directly (not one from the other). Small k take x^k directly.
// Otherwise the smaller of x and c is the accurate one: for c <= 1/2,
// exp(k log1p(-c)) turns a relative error d of c into an absolute error of order
// d in x^k, whatever k (the exponent's error, ~ t d, is damped by e^-t); for
// c > 1/2, x < 1/2 is the accurate one and std::pow gives x^k to within an ulp.
inline double pow_fraction(double x, double c, int64_t k) {
  if (k <= kDirectPowMaxK) return ipow(x, k);
  const double kd = static_cast<double>(k);
  return c <= 0.5 ? std::exp(kd * std::log1p(-c)) : std::pow(x, kd);
}

// sum_{j=0..d} a^j b^(d-j): every term is nonnegative for a, b >= 0, so
// (a^(d+1) - b^(d+1)) / (a - b) is evaluated without cancellation.
inline double geometric_sum(double a, double b, int64_t d) {
  double sum = 1.0, a_pow = 1.0;
  for (int64_t j = 1; j <= d; ++j) {
    a_pow *= a;
    sum = b * sum + a_pow;
  }
  return sum;
}

// f(std::integral_constant<Ties, T>()) for the convention T == ties: the one switch
// from a runtime convention to kernels templated on it.
template <class F>
decltype(auto) with_ties(Ties ties, F&& f) {
  switch (ties) {
    case Ties::strict: return f(std::integral_constant<Ties, Ties::strict>());
    case Ties::weak: return f(std::integral_constant<Ties, Ties::weak>());
    case Ties::half: return f(std::integral_constant<Ties, Ties::half>());
    case Ties::uniform: break;
  }
  return f(std::integral_constant<Ties, Ties::uniform>());
}

// P[y > pi^(k)] for one voter by direct powers (k <= kDirectPowMaxK), where L is the
// policy mass strictly below y and E the mass tied with y (y included).
inline double single_vs_product(double L, double E, int64_t k, Ties ties) {
  switch (ties) {
    case Ties::strict: return ipow(L, k);
    case Ties::weak: return ipow(L + E, k);
    case Ties::half: return 0.5 * (ipow(L, k) + ipow(L + E, k));
    case Ties::uniform:
    default: return geometric_sum(L + E, L, k) / static_cast<double>(k + 1);
  }
}

// The value of a tie between c members of S and d members of T, counted for S.
inline double tie_share(int64_t c, int64_t d, Ties ties) {
  switch (ties) {
    case Ties::strict: return 0.0;
    case Ties::weak: return 1.0;
    case Ties::half: return 0.5;
    case Ties::uniform:
    default: return (c + d == 0) ? 0.5 : static_cast<double>(c) / static_cast<double>(c + d);
  }
}

}  // namespace ualign
