// SIMD inner loops of the Plackett-Luce kernels (declared in pl_simd.hpp).
//
// Every loop runs over arrays padded to a multiple of 4 and keeps four lanes
// (element y goes to lane y % 4) that are combined in one fixed order, so the
// AVX2 variant and the baseline variant produce the same bits, and so does any
// number of threads. exp is a branch-free polynomial (Cody-Waite reduction,
// degree-13 Taylor on |r| <= ln2/2, relative error <= 2.3e-16) that GCC
// vectorises; floating-point contraction is off (ISO C++ mode), so there is no
// FMA in one variant and not in the other.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "pl_kernels.hpp"

#include "simd.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define UALIGN_PL_VECTOR 1  // GCC/Clang vector extensions are available
#endif

namespace ualign::pl::UALIGN_ISA {

namespace {

#ifdef UALIGN_PL_VECTOR
typedef double vd4 __attribute__((vector_size(32)));
typedef long long vi4 __attribute__((vector_size(32)));

UALIGN_INLINE vd4 splat(double v) { return vd4{v, v, v, v}; }
UALIGN_INLINE vd4 load(const double* p) {
  vd4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
UALIGN_INLINE void store(double* p, vd4 v) { std::memcpy(p, &v, sizeof v); }
UALIGN_INLINE double total(vd4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }
// mask ? a : b per lane (mask from a comparison: all ones or all zeros), written
// with bit operations so that GCC and Clang accept it alike.
UALIGN_INLINE vd4 select(vi4 mask, vd4 a, vd4 b) { return (vd4)(((vi4)a & mask) | ((vi4)b & ~mask)); }

// exp(x) for every lane: 0 below -708 (where the true value is < 3.3e-308),
// saturating at exp(709) above 709. Also sets em1 = exp(x) - 1 to full relative
// precision: near 0 (reduced argument n = 0) it is r q(r) from the same Horner
// scheme, elsewhere exp(x) - 1 loses at most two bits (|exp(x) - 1| >= 0.29).
UALIGN_INLINE vd4 vexp_m1(vd4 x, vd4& em1) {
  const vd4 lo = splat(-708.0), hi = splat(709.0);
  vd4 xc = select((vi4)(x < lo), lo, x);
  xc = select((vi4)(xc > hi), hi, xc);
  const vd4 shifter = splat(6755399441055744.0);  // 1.5 * 2^52: rounds to an integer in the low bits
  const vd4 t = xc * splat(1.4426950408889634074) + shifter;
  const vd4 n = t - shifter;
  const vd4 r = (xc - n * splat(6.93147180369123816490e-01)) - n * splat(1.90821492927058770002e-10);
  vd4 p = splat(1.0 / 6227020800.0);
  p = p * r + splat(1.0 / 479001600.0);
  p = p * r + splat(1.0 / 39916800.0);
  p = p * r + splat(1.0 / 3628800.0);
  p = p * r + splat(1.0 / 362880.0);
  p = p * r + splat(1.0 / 40320.0);
  p = p * r + splat(1.0 / 5040.0);
  p = p * r + splat(1.0 / 720.0);
  p = p * r + splat(1.0 / 120.0);
  p = p * r + splat(1.0 / 24.0);
  p = p * r + splat(1.0 / 6.0);
  p = p * r + splat(0.5);
  p = p * r + splat(1.0);  // q(r) = (exp(r) - 1) / r
  const vd4 rq = p * r;
  const vi4 bits = (((vi4)t - (vi4)shifter) + 1023) << 52;  // 2^n, n in [-1022, 1023]
  const vd4 out = select((vi4)(x < lo), splat(0.0), (rq + splat(1.0)) * (vd4)bits);
  em1 = select((vi4)(n == splat(0.0)), rq, out - splat(1.0));
  return out;
}

UALIGN_INLINE vd4 vexp(vd4 x) {
  vd4 unused;
  return vexp_m1(x, unused);
}

// The shared tail of the passes that set rates, for four responses at y: store
// the rates a, E = exp(-a) and (if G) G = 1 - E to full relative precision, and,
// given a policy, add pi*G (these sums are D(t), the chance that a draw has fired)
// and pi*E*a to the sums.
UALIGN_INLINE void store_rates(int64_t y, vd4 av, const double* pi, double* a, double* E, double* G, vd4& s0, vd4& s1) {
  vd4 em1;
  const vd4 ev = vexp_m1(-av, em1);
  store(a + y, av);
  store(E + y, ev);
  if (G) store(G + y, -em1);
  if (pi) {
    const vd4 pv = load(pi + y);
    s0 -= pv * em1;
    s1 += pv * ev * av;
  }
}
#endif

}  // namespace

#ifdef UALIGN_PL_VECTOR

void exp_pass(const double* d, double shift, const double* pi, int64_t m4, double* a, double* E, double* sums) {
  vd4 s0 = splat(0.0), s1 = splat(0.0);
  const vd4 cap = splat(kMaxArg), sh = splat(shift);
  for (int64_t y = 0; y < m4; y += 4) {
    vd4 arg = load(d + y) + sh;
    arg = select((vi4)(arg > cap), cap, arg);
    store_rates(y, vexp(arg), pi, a, E, nullptr, s0, s1);
  }
  if (pi) {
    sums[0] = total(s0);
    sums[1] = total(s1);
  }
}

void exp_fired_pass(const double* d, double shift, const double* pi, int64_t m4, double* a, double* E, double* G,
                    double* sums) {
  vd4 s0 = splat(0.0), s1 = splat(0.0);
  const vd4 cap = splat(kMaxArg), sh = splat(shift);
  for (int64_t y = 0; y < m4; y += 4) {
    vd4 arg = load(d + y) + sh;
    arg = select((vi4)(arg > cap), cap, arg);
    store_rates(y, vexp(arg), pi, a, E, G, s0, s1);
  }
  sums[0] = total(s0);
  sums[1] = total(s1);
}

void advance_fired_pass(double ratio, const double* pi, int64_t m4, double* a, double* E, double* G, double* sums) {
  vd4 s0 = splat(0.0), s1 = splat(0.0);
  const vd4 q = splat(ratio);
  for (int64_t y = 0; y < m4; y += 4) store_rates(y, load(a + y) * q, pi, a, E, G, s0, s1);
  sums[0] = total(s0);
  sums[1] = total(s1);
}

void dot_pass(const double* pi, const double* a, const double* E, int64_t m4, double* sums) {
  vd4 s0 = splat(0.0), s1 = splat(0.0);
  for (int64_t y = 0; y < m4; y += 4) {
    const vd4 av = load(a + y), pv = load(pi + y);
    vd4 em1;
    vexp_m1(-av, em1);  // E is stored; 1 - E to full precision is not
    s0 -= pv * em1;
    s1 += pv * load(E + y) * av;
  }
  sums[0] = total(s0);
  sums[1] = total(s1);
}

double dot(const double* q, const double* G, int64_t m4) {
  vd4 s = splat(0.0);
  for (int64_t y = 0; y < m4; y += 4) s += load(q + y) * load(G + y);
  return total(s);
}

void add_scaled(double w, const double* G, int64_t m4, double* acc) {
  const vd4 wv = splat(w);
  for (int64_t y = 0; y < m4; y += 4) store(acc + y, load(acc + y) + wv * load(G + y));
}

void add_gradient(double g1, double g2, const double* a, const double* E, int64_t m4, double* acc) {
  const vd4 c1 = splat(g1), c2 = splat(g2);
  for (int64_t y = 0; y < m4; y += 4) {
    // a E first: a reaches e^704 where E = 0, and a * c1 alone may overflow (inf * 0)
    const vd4 ev = load(E + y);
    store(acc + y, load(acc + y) + (load(a + y) * ev) * c1 + ev * c2);
  }
}

void add_logistic(double p, const double* x, double level, int64_t m4, double* acc) {
  const vd4 pv = splat(p), lv = splat(level);
  for (int64_t y = 0; y < m4; y += 4) store(acc + y, load(acc + y) + pv / (splat(1.0) + vexp(lv - load(x + y))));
}

double ratio_dot(const double* w, const double* ey, const double* ez, int64_t count4) {
  vd4 s = splat(0.0);
  for (int64_t i = 0; i < count4; i += 4) {
    const vd4 a = load(ey + i), b = load(ez + i);
    s += load(w + i) * (a / (a + b));
  }
  return total(s);
}

void exp_array(const double* x, int64_t m4, double* out) {
  for (int64_t y = 0; y < m4; y += 4) store(out + y, vexp(load(x + y)));
}

#else  // scalar fallback (same lane order, std::exp)

namespace {
inline double lanes_total(const double* s) { return (s[0] + s[1]) + (s[2] + s[3]); }

// a[y] = av, E[y] = exp(-av), G[y] = 1 - E[y] (if G); with a policy, sum pi G and
// pi E a by lanes.
inline void store_rate(int64_t y, double av, const double* pi, double* a, double* E, double* G, double* s0,
                       double* s1) {
  const double ev = std::exp(-av);
  a[y] = av;
  E[y] = ev;
  if (G) G[y] = -std::expm1(-av);
  if (pi) {
    s0[y % 4] -= pi[y] * std::expm1(-av);
    s1[y % 4] += pi[y] * ev * av;
  }
}
}  // namespace

void exp_pass(const double* d, double shift, const double* pi, int64_t m4, double* a, double* E, double* sums) {
  double s0[4] = {}, s1[4] = {};
  for (int64_t y = 0; y < m4; ++y) store_rate(y, std::exp(std::min(d[y] + shift, kMaxArg)), pi, a, E, nullptr, s0, s1);
  if (pi) {
    sums[0] = lanes_total(s0);
    sums[1] = lanes_total(s1);
  }
}

void exp_fired_pass(const double* d, double shift, const double* pi, int64_t m4, double* a, double* E, double* G,
                    double* sums) {
  double s0[4] = {}, s1[4] = {};
  for (int64_t y = 0; y < m4; ++y) store_rate(y, std::exp(std::min(d[y] + shift, kMaxArg)), pi, a, E, G, s0, s1);
  sums[0] = lanes_total(s0);
  sums[1] = lanes_total(s1);
}

void advance_fired_pass(double ratio, const double* pi, int64_t m4, double* a, double* E, double* G, double* sums) {
  double s0[4] = {}, s1[4] = {};
  for (int64_t y = 0; y < m4; ++y) store_rate(y, a[y] * ratio, pi, a, E, G, s0, s1);
  sums[0] = lanes_total(s0);
  sums[1] = lanes_total(s1);
}

void dot_pass(const double* pi, const double* a, const double* E, int64_t m4, double* sums) {
  double s0[4] = {}, s1[4] = {};
  for (int64_t y = 0; y < m4; ++y) {
    s0[y % 4] -= pi[y] * std::expm1(-a[y]);
    s1[y % 4] += pi[y] * E[y] * a[y];
  }
  sums[0] = lanes_total(s0);
  sums[1] = lanes_total(s1);
}

double dot(const double* q, const double* G, int64_t m4) {
  double s[4] = {};
  for (int64_t y = 0; y < m4; ++y) s[y % 4] += q[y] * G[y];
  return lanes_total(s);
}

void add_scaled(double w, const double* G, int64_t m4, double* acc) {
  for (int64_t y = 0; y < m4; ++y) acc[y] += w * G[y];
}

void add_gradient(double g1, double g2, const double* a, const double* E, int64_t m4, double* acc) {
  for (int64_t y = 0; y < m4; ++y) acc[y] += (a[y] * E[y]) * g1 + E[y] * g2;
}

void add_logistic(double p, const double* x, double level, int64_t m4, double* acc) {
  for (int64_t y = 0; y < m4; ++y) acc[y] += p / (1.0 + std::exp(std::min(level - x[y], 709.0)));
}

double ratio_dot(const double* w, const double* ey, const double* ez, int64_t count4) {
  double s[4] = {};
  for (int64_t i = 0; i < count4; ++i) s[i % 4] += w[i] * (ey[i] / (ey[i] + ez[i]));
  return lanes_total(s);
}

void exp_array(const double* x, int64_t m4, double* out) {
  for (int64_t y = 0; y < m4; ++y) out[y] = x[y] < -708.0 ? 0.0 : std::exp(std::min(x[y], 709.0));
}

#endif

}  // namespace ualign::pl::UALIGN_ISA
