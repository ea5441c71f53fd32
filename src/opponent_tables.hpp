// Opponents with several outputs (Cai & Zheng, arXiv:2601.08777, §D.7): the
// quantities behind the exact search for the worst multiset Y of `size` responses
// against a fixed operand X (ualign/game.py, committee_pricing.hpp).
//
// For one voter, P_i[Y > X] depends on Y only through Y's best level b in the
// voter's ranking and the number c of members of Y at b, so a table over (level,
// count) per voter describes the whole objective; for X = pi^(k) its gradient in
// pi is a closed form in the policy mass strictly worse than b and at b.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"
#include "quadrature.hpp"
#include "ranking_kernels.hpp"
#include "ties.hpp"

namespace ualign {

// Gauss-Legendre nodes for multisets of up to `size` members against an operand of
// up to `draws` draws: win_rate_kernel's rule for the two (the same bits), which
// also integrates the gradient's polynomials (degree <= size + draws - 1) exactly.
inline int opponent_nodes(int64_t size, int64_t draws, Ties ties) {
  if (ties != Ties::uniform) return 1;
  if (size + draws > kMaxUniformDraws)
    throw std::invalid_argument("opponent_k: uniform-tie win rates are exact up to " +
                                std::to_string(kMaxUniformDraws) + " draws in the two operands together, got " +
                                std::to_string(size) + " + " + std::to_string(draws));
  return static_cast<int>(std::max<int64_t>(1, (size + draws + 1) / 2));
}

// by_count[(z * n + i) * size + c - 1] = w_i P_i[M > X] for a multiset M whose best
// level in voter i's ranking is z's, with c = 1..size members there.
template <class Level>
void multiset_value_table(const RankingView<Level>& data, const Operand& x, Ties ties, int64_t size, double* by_count) {
  const int64_t n = data.n, m = data.m;
  const int q = opponent_nodes(size, x.max_size(), ties);
  const GaussLegendre gl(q);
  ExceptionTrap trap;
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (n * m * size >= kParallelMinWork && !in_parallel_region())
#endif
  {
    std::optional<PairLaw<Level>> law;
    std::vector<double> by_level;
    trap.run([&] {
      law.emplace(m, q);
      by_level.resize(static_cast<size_t>(m * size));
    });
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t i = 0; i < n; ++i) {
      if (trap.failed()) continue;
      const Level* row = data.row(i);
      const int64_t R = data.n_levels[i];
      law->build(row, R, x, ties, gl);
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 1; c <= size; ++c)
          by_level[r * size + c - 1] = data.weights[i] * law->beaten_by_multiset(r, c, ties, gl);
      for (int64_t z = 0; z < m; ++z)
        std::copy_n(by_level.data() + static_cast<int64_t>(row[z]) * size, size, by_count + (z * n + i) * size);
    }
  }
  trap.rethrow();
}

// out[0] = P[Y > pi^(k)] = sum_i w_i P_i[Y > pi^(k)] and out[1 + z] its derivative
// in pi_z, the policy extended off the simplex as a homogeneous polynomial of degree
// k (every P_i is then convex in pi: the derivatives give valid cutting planes).
// With b, c Y's best level and count for voter i, W and A the fractions of pi's
// mass strictly worse than b and at b, and E the fraction better than b:
//   "strict": W^k;  "weak": (W + A)^k;  "half": their mean;
//   "uniform": int_0^1 c t^(c-1) (W + A t)^k dt (the share c/(c+C) of a tie with
//   C draws is int_0^1 c t^(c+C-1) dt),
// so d/dpi_z is k W^(k-1) etc. for z worse than b, and for z at b under "uniform"
// k int_0^1 c t^c (W + A t)^(k-1) dt. Powers go through pow_fraction with their
// complements (E, E + A (1 - t)), as in PairLaw.
template <class Level>
void multiset_product_gradient(const RankingView<Level>& data, const std::vector<int64_t>& members, const double* pi,
                               int64_t k, Ties ties, double* out) {
  const int64_t m = data.m;
  const int q = opponent_nodes(static_cast<int64_t>(members.size()), k, ties);
  const GaussLegendre gl(q);
  const Operand x = product_operand(m, pi, &k);
  sum_over_voters(data.n, m + 1, out, [&]() {
    return [&data, &members, &gl, &x, pi, k, ties, m, q, law = PairLaw<Level>(m, q),
            mass = std::vector<double>(static_cast<size_t>(m + 1))](int64_t i, double* acc) mutable {
      const Level* row = data.row(i);
      const int64_t R = data.n_levels[i];
      int64_t b = R, c = 0;
      for (int64_t z : members) {
        const int64_t level = row[z];
        if (level < b)
          b = level, c = 1;
        else if (level == b)
          ++c;
      }
      law.build(row, R, x, ties, gl);
      const double w = data.weights[i];
      acc[0] += w * law.beaten_by_multiset(b, c, ties, gl);
      std::fill_n(mass.begin(), R, 0.0);
      double total = 0.0;
      for (int64_t y = 0; y < m; ++y) mass[row[y]] += pi[y], total += pi[y];
      double better = 0.0, worse = 0.0;
      for (int64_t r = 0; r < b; ++r) better += mass[r];
      for (int64_t r = b + 1; r < R; ++r) worse += mass[r];
      const double W = worse / total, A = mass[b] / total, E = better / total, kd = static_cast<double>(k);
      double d_worse = 0.0, d_at = 0.0;
      switch (ties) {
        case Ties::strict: d_worse = kd * pow_fraction(W, E + A, k - 1); break;
        case Ties::weak: d_worse = d_at = kd * pow_fraction(W + A, E, k - 1); break;
        case Ties::half:
          d_at = 0.5 * kd * pow_fraction(W + A, E, k - 1);
          d_worse = 0.5 * kd * pow_fraction(W, E + A, k - 1) + d_at;
          break;
        case Ties::uniform:
        default:
          for (int j = 0; j < q; ++j) {
            const double t = gl.nodes[j];
            const double power = pow_fraction(W + A * t, E + A * (1.0 - t), k - 1);
            const double weight = gl.weights[j] * static_cast<double>(c) * ipow(t, c - 1) * power;
            d_worse += weight;
            d_at += weight * t;
          }
          d_worse *= kd, d_at *= kd;
          break;
      }
      for (int64_t z = 0; z < m; ++z) {
        const int64_t level = row[z];
        acc[1 + z] += level > b ? w * d_worse : level == b ? w * d_at : 0.0;
      }
    };
  });
}

}  // namespace ualign
