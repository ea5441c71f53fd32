// Per-voter inner loops of the ranking kernels, over one voter's row of levels.
//
// They are plain (non-template) functions so that each is compiled once per
// instruction set (level_kernels.cpp into namespace isa_<set>) and called through
// the dispatching names below (dispatch.hpp); every set produces the same bits.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "dispatch.hpp"
#include "ties.hpp"

namespace ualign {

// Per-level arrays are padded to a multiple of this, with zero mass in the padding.
inline constexpr int64_t kLevelPad = 16;

inline int64_t padded_levels(int64_t R) { return (R + kLevelPad - 1) / kLevelPad * kLevelPad; }

// Most values of k product_levels_x4 computes in one pass.
inline constexpr int64_t kMaxFusedKs = 64;

// A list of k (each at most kDirectPowMaxK) by exponent, as product_levels_x4 reads
// it: first_at[e] is the first j with ks[j] == e (or -1), next[j] the next one (or -1).
struct KSchedule {
  std::array<int64_t, kDirectPowMaxK + 1> first_at;
  std::vector<int64_t> next;

  void assign(const std::vector<int64_t>& ks) {
    first_at.fill(-1);
    next.assign(ks.size(), -1);
    for (size_t j = ks.size(); j-- > 0;) {
      next[j] = first_at[static_cast<size_t>(ks[j])];
      first_at[static_cast<size_t>(ks[j])] = static_cast<int64_t>(j);
    }
  }
};

// For a voter with R levels: value[r] += scale * P[a response at level r > pi^(k)]
// for r < padded_levels(R) (the closed forms of docs/concepts.md, "Tie conventions",
// in the mass strictly below and tied with each level). mass and below are
// scratch of the same padded size.
#define UALIGN_DECLARE_LEVEL_KERNELS(Level)                                                                            \
  void add_product_levels(const Level* row, int64_t m, int64_t R, const double* pi, int64_t k, double scale,           \
                          Ties ties, double* mass, double* below, double* value);                                      \
  /* acc[y] += value[row[y]] for y < m */                                                                              \
  void gather_add(const Level* row, int64_t m, const double* value, double* acc);                                      \
  /* value[r] = scale * P[level r > pi^(k)] and grad[r] = scale * d/dpi_z sum_y q_y u_y for  */                        \
  /* any z at level r, r < R. mass, below and weight are scratch.                            */                        \
  void product_levels_with_gradient(const Level* row, int64_t m, int64_t R, const double* pi, const double* q,         \
                                    int64_t k, double scale, Ties ties, double* mass, double* below, double* weight,   \
                                    double* value, double* grad);                                                      \
  /* dL[j], dE[j] = scale * d/dL, d/dE of P[level r > pi^(k)] at the level r of     */                                 \
  /* responses[j] (its Jacobian entries for strictly worse / tied z), j < n_responses. */                              \
  void product_level_derivatives(const Level* row, int64_t m, int64_t R, const double* pi, int64_t k, double scale,    \
                                 Ties ties, const int64_t* responses, int64_t n_responses, double* mass,               \
                                 double* below, double* dL, double* dE);                                               \
  /* acc[r*n_cols + c] += dL[r] if row[cols[c]] is worse than row[rows[r]], dE[r] if  */                               \
  /* tied (one voter's Jacobian entries); col_levels is scratch of n_cols.            */                               \
  void add_jacobian_entries(const Level* row, const int64_t* rows, int64_t n_rows, const int64_t* cols,                \
                            int64_t n_cols, const double* dL, const double* dE, double* col_levels, double* acc);      \
  /* Four consecutive voters (rows row0 + v*m, v < 4) with at most `size` levels (a   */                               \
  /* multiple of kLevelPad), for the n_ks <= kMaxFusedKs values ks (each at most      */                               \
  /* kDirectPowMaxK) listed by exponent in first_at/next (KSchedule):                 */                               \
  /* values[4*(r*n_ks + j) + v] = w4[v] * P[level r of voter v > pi^(ks[j])].         */                               \
  /* strict_rows: no voter of the four has ties. mass4 is scratch of 4*size; it may   */                               \
  /* be values (4*size*n_ks).                                                          */                              \
  void product_levels_x4(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi,               \
                         const int64_t* ks, int64_t n_ks, const int64_t* first_at, const int64_t* next,                \
                         const double* w4, Ties ties, double* mass4, double* values);                                  \
  /* acc[j*m + y] += sum_v values[4*(row_v[y]*n_ks + j) + v] for j < n_ks */                                           \
  void gather_add_x4(const Level* row0, int64_t m, int64_t n_ks, const double* values, double* acc);                   \
  /* product_levels_x4 and, in grad4[4r+v], w4[v] * d/dpi_z sum_y q_y u_y for any z at   */                            \
  /* level r of voter v. value4, grad4 and slope4 are 4*size; no two may be the same.  */                              \
  void product_levels_with_gradient_x4(const Level* row0, int64_t m, int64_t size, bool strict_rows, const double* pi, \
                                       const double* q, int64_t k, const double* w4, Ties ties, double* value4,        \
                                       double* grad4, double* slope4);

#define UALIGN_LEVEL_KERNELS             \
  UALIGN_DECLARE_LEVEL_KERNELS(uint8_t)  \
  UALIGN_DECLARE_LEVEL_KERNELS(uint16_t) \
  UALIGN_DECLARE_LEVEL_KERNELS(uint32_t)
UALIGN_DECLARE_PER_ISA(UALIGN_LEVEL_KERNELS)
#undef UALIGN_LEVEL_KERNELS
#undef UALIGN_DECLARE_LEVEL_KERNELS

UALIGN_DISPATCHED(add_product_levels)
UALIGN_DISPATCHED(gather_add)
UALIGN_DISPATCHED(product_levels_with_gradient)
UALIGN_DISPATCHED(product_levels_with_gradient_x4)
UALIGN_DISPATCHED(product_level_derivatives)
UALIGN_DISPATCHED(add_jacobian_entries)
UALIGN_DISPATCHED(product_levels_x4)
UALIGN_DISPATCHED(gather_add_x4)

}  // namespace ualign
