// SIMD primitives of the Plackett-Luce kernels (pl_kernels.hpp), defined in
// pl_simd.cpp, which CMake compiles once per instruction set (dispatch.hpp).
// Arrays have length m4, a multiple of 4, and the four lanes of every sum are
// combined in one fixed order.
#pragma once

#include <cstdint>

#include "dispatch.hpp"

namespace ualign::pl {

#define UALIGN_PL_PRIMITIVES                                                                                          \
  /* a[y] = exp(min(d[y] + shift, kMaxArg)), E[y] = exp(-a[y]); */                                                    \
  /* if pi: sums[0] = D = sum pi (1 - E) (to full relative precision, via expm1), sums[1] = sum pi a E. */            \
  void exp_pass(const double* d, double shift, const double* pi, int64_t m4, double* a, double* E, double* sums);     \
  /* exp_pass (pi given) that also stores G[y] = 1 - E[y] to full relative precision. */                              \
  void exp_fired_pass(const double* d, double shift, const double* pi, int64_t m4, double* a, double* E, double* G,   \
                      double* sums);                                                                                  \
  /* a[y] *= ratio, then as exp_fired_pass. */                                                                        \
  void advance_fired_pass(double ratio, const double* pi, int64_t m4, double* a, double* E, double* G, double* sums); \
  /* sums[0] = sum pi (1 - E), sums[1] = sum pi a E (E = exp(-a)). */                                                 \
  void dot_pass(const double* pi, const double* a, const double* E, int64_t m4, double* sums);                        \
  /* sum q G */                                                                                                       \
  double dot(const double* q, const double* G, int64_t m4);                                                           \
  /* acc += w G */                                                                                                    \
  void add_scaled(double w, const double* G, int64_t m4, double* acc);                                                \
  /* acc += (a E) g1 + E g2 */                                                                                        \
  void add_gradient(double g1, double g2, const double* a, const double* E, int64_t m4, double* acc);                 \
  /* acc[y] += p / (1 + exp(level - x[y])) = p * e(y) / (e(y) + exp(level)) */                                        \
  void add_logistic(double p, const double* x, double level, int64_t m4, double* acc);                                \
  /* sum_i w[i] ey[i] / (ey[i] + ez[i]) */                                                                            \
  double ratio_dot(const double* w, const double* ey, const double* ez, int64_t count4);                              \
  /* out = exp(x) (0 below -708) */                                                                                   \
  void exp_array(const double* x, int64_t m4, double* out);
UALIGN_DECLARE_PER_ISA(UALIGN_PL_PRIMITIVES)
#undef UALIGN_PL_PRIMITIVES

UALIGN_DISPATCHED(exp_pass)
UALIGN_DISPATCHED(exp_fired_pass)
UALIGN_DISPATCHED(advance_fired_pass)
UALIGN_DISPATCHED(dot_pass)
UALIGN_DISPATCHED(dot)
UALIGN_DISPATCHED(add_scaled)
UALIGN_DISPATCHED(add_gradient)
UALIGN_DISPATCHED(add_logistic)
UALIGN_DISPATCHED(ratio_dot)
UALIGN_DISPATCHED(exp_array)

}  // namespace ualign::pl
