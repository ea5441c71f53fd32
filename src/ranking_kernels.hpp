// Exact kernels for a population of (weak) rankings stored as dense levels.
//
// levels[i*m + y] is voter i's level of response y: 0 is the best, equal levels
// are ties, and the levels of a voter are exactly 0..n_levels[i]-1. Every kernel
// is a closed form over the distribution of a voter's best level (docs/concepts.md,
// "Tie conventions"): nothing is enumerated and nothing of size n*m is allocated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "level_kernels.hpp"
#include "operand.hpp"
#include "parallel.hpp"
#include "quadrature.hpp"
#include "ties.hpp"

namespace ualign {

// Largest total number of draws of two operands compared under uniform ties
// (the quadrature's set-up cost grows with the square of it).
inline constexpr int64_t kMaxUniformDraws = 10000;

template <class Level>
struct RankingView {
  const Level* levels;
  const int32_t* n_levels;
  const double* weights;  // normalised to sum 1
  int64_t n;
  int64_t m;
  const Level* row(int64_t i) const { return levels + i * m; }
};

// A multiset's best level for one voter (R when it is empty) and how many of its
// members, items[begin..end), are at that level.
template <class Level>
std::pair<int64_t, int64_t> best_member_level(const Level* row, const int64_t* items, int64_t begin, int64_t end,
                                              int64_t R) {
  int64_t best = R, count = 0;
  for (int64_t j = begin; j < end; ++j) {
    const int64_t level = row[items[j]];
    if (level < best) {
      best = level;
      count = 1;
    } else if (level == best) {
      ++count;
    }
  }
  return {best, count};
}

// ---------------------------------------------------------------------------
// "Single" law: for each level r of one voter, P_i[y > X] for a response y at r.
// Cost per voter: O(m + R*k) per product term, O(size) per multiset term.
// ---------------------------------------------------------------------------
template <class Level>
class SingleLaw {
 public:
  explicit SingleLaw(int64_t m)
      : value_(static_cast<size_t>(padded_levels(m + 1))),
        mass_(value_.size()),
        below_(value_.size()),
        above_(value_.size()) {}

  // Fills value()[0..R) with scale * P_i[y > X] for a response y at each level of
  // voter row `row` (R levels), X the operand.
  void build(const Level* row, int64_t R, const Operand& op, Ties ties, double scale) {
    const int64_t size = padded_levels(R);
    std::fill_n(value_.begin(), size, 0.0);
    for (int64_t t = 0; t < op.n_products; ++t) {
      const double p = op.product_probs[t];
      if (p == 0.0) continue;
      add_product_levels(row, op.m, R, op.policies + t * op.m, op.ks[t], scale * p, ties, mass_.data(), below_.data(),
                         value_.data());
    }
    if (op.n_multisets > 0) {
      // above_[b] collects the mass of multisets whose best level is b; a response
      // strictly above b (level < b) beats them, so the value is a suffix sum.
      std::fill_n(above_.begin(), R + 1, 0.0);
      for (int64_t t = 0; t < op.n_multisets; ++t) {
        const double p = op.multiset_probs[t];
        if (p == 0.0) continue;
        const int64_t begin = op.offsets[t], end = op.offsets[t + 1];
        if (begin == end) {  // empty multiset: every response beats it
          above_[R] += p;
          continue;
        }
        const auto [best, count] = best_member_level(row, op.items, begin, end, R);
        above_[best] += p;
        value_[best] += scale * p * tie_share(1, count, ties);
      }
      double beaten = 0.0;
      for (int64_t r = R - 1; r >= 0; --r) {
        beaten += above_[r + 1];
        value_[r] += scale * beaten;
      }
    }
  }

  const double* value() const { return value_.data(); }

 private:
  std::vector<double> value_, mass_, below_, above_;
};

// Voters handled together by the interleaved product kernel.
inline constexpr int64_t kGroup = 4;

// Voters i..i+kGroup-1: the padded size of their level arrays, and whether none has ties.
template <class Level>
std::pair<int64_t, bool> group_levels(const RankingView<Level>& data, int64_t i) {
  const int32_t* counts = data.n_levels + i;
  const int64_t most = *std::max_element(counts, counts + kGroup);
  return {padded_levels(most), std::all_of(counts, counts + kGroup, [&data](int32_t R) { return R == data.m; })};
}

// Whether beat_probabilities_kernel runs a single product pi^(k) through the interleaved
// four-voter kernel: it raises level masses to the k-th power directly (and sums
// the uniform form in O(k)), which is exact to 1e-12 only for small k; larger k
// take SingleLaw's complement forms.
inline bool four_voter_path(int64_t k) { return k <= kDirectPowMaxK; }

// Buffers of the four-voter pass, reused from prompt to prompt by one thread.
struct MultiKScratch {
  SerialSumScratch sum;
  std::vector<double> values;
  KSchedule schedule;
  std::vector<int64_t> ks;  // product_beats's list of one k
};

// The voters [begin, end) of one prompt, for every k of the list: four at a time
// through the interleaved kernel (values: its buffer, also holding the level
// masses), the rest one by one through SingleLaw.
template <class Level>
void multi_k_range(const RankingView<Level>& data, const double* pi, const std::vector<int64_t>& ks, Ties ties,
                   const KSchedule& schedule, double* values, std::optional<SingleLaw<Level>>& law, int64_t begin,
                   int64_t end, double* acc) {
  const int64_t m = data.m, n_ks = static_cast<int64_t>(ks.size());
  int64_t i = begin;
  for (; i + kGroup <= end; i += kGroup) {
    const auto [size, strict_rows] = group_levels(data, i);
    product_levels_x4(data.row(i), m, size, strict_rows, pi, ks.data(), n_ks, schedule.first_at.data(),
                      schedule.next.data(), data.weights + i, ties, values, values);
    gather_add_x4(data.row(i), m, n_ks, values, acc);
  }
  if (i < end && !law) law.emplace(m);
  const double one = 1.0;
  const int64_t no_offsets = 0;
  for (; i < end; ++i) {
    const Level* row = data.row(i);
    for (int64_t j = 0; j < n_ks; ++j) {
      Operand op;
      op.m = m;
      op.n_products = 1;
      op.policies = pi;
      op.product_probs = &one;
      op.ks = ks.data() + j;
      op.offsets = &no_offsets;
      law->build(row, data.n_levels[i], op, ties, data.weights[i]);
      gather_add(row, m, law->value(), acc + j * m);
    }
  }
}

// out[j*m + y] = P[y > pi^(ks[j])] for every j, in one pass over the voters: the
// same arithmetic for each k, so each value has the bits of the list {k} alone
// (beat_probabilities_kernel's single product is that list) provided the wider
// accumulation keeps the voter partition of width m (fused_partition_ok). Only for
// k of the four-voter path (four_voter_path), at most kMaxFusedKs of them. With
// `serial` the voters are summed on the calling thread with its reused buffers;
// without, with the threads of sum_over_voter_ranges (for a prompt too big to
// share a thread).
template <class Level>
void beats_multi_k(const RankingView<Level>& data, const double* pi, const std::vector<int64_t>& ks, Ties ties,
                   double* out, MultiKScratch& scratch, bool serial) {
  const int64_t n_ks = static_cast<int64_t>(ks.size());
  const size_t size = static_cast<size_t>(n_ks * kGroup * padded_levels(data.m + 1));
  scratch.schedule.assign(ks);
  const KSchedule& schedule = scratch.schedule;
  if (serial) {
    scratch.values.resize(size);
    std::optional<SingleLaw<Level>> law;
    auto worker = [&](int64_t begin, int64_t end, double* acc) {
      multi_k_range(data, pi, ks, ties, schedule, scratch.values.data(), law, begin, end, acc);
    };
    sum_over_voter_ranges_serial(data.n, n_ks * data.m, out, worker, scratch.sum);
    return;
  }
  sum_over_voter_ranges(data.n, n_ks * data.m, out, [&]() {
    return [&data, pi, &ks, ties, &schedule, law = std::optional<SingleLaw<Level>>(),
            values = std::vector<double>(size)](int64_t begin, int64_t end, double* acc) mutable {
      multi_k_range(data, pi, ks, ties, schedule, values.data(), law, begin, end, acc);
    };
  });
}

// The fused pass sums n_ks*m columns at once; its bits equal beat_probabilities_kernel's only if
// the voters are split into the same lanes for both widths.
inline bool fused_partition_ok(int64_t n, int64_t m, int64_t n_ks) {
  return n_ks <= kMaxFusedKs && VoterPartition(n, n_ks * m).lanes == VoterPartition(n, m).lanes;
}

// out[y] = P[y > pi^(k)], the utilities of one product on the four-voter path
// (four_voter_path(k)): beats_multi_k's list {k}, with its scratch and `serial`.
template <class Level>
void product_beats(const RankingView<Level>& data, const double* pi, int64_t k, Ties ties, double* out,
                   MultiKScratch& scratch, bool serial) {
  scratch.ks.assign(1, k);
  beats_multi_k(data, pi, scratch.ks, ties, out, scratch, serial);
}

// utilities / beats: out[y] = sum_i w_i P_i[y > X]. A single product pi^(k) with
// k on the four-voter path is product_beats.
template <class Level>
void beat_probabilities_kernel(const RankingView<Level>& data, const Operand& op, Ties ties, double* out) {
  const int64_t m = data.m;
  if (op.n_products == 1 && op.n_multisets == 0 && op.product_probs[0] == 1.0 && four_voter_path(op.ks[0])) {
    MultiKScratch scratch;
    product_beats(data, op.policies, op.ks[0], ties, out, scratch, false);
    return;
  }
  sum_over_voter_ranges(data.n, m, out, [&]() {
    return [&data, &op, ties, m, law = SingleLaw<Level>(m)](int64_t begin, int64_t end, double* acc) mutable {
      for (int64_t i = begin; i < end; ++i) {
        const Level* row = data.row(i);
        law.build(row, data.n_levels[i], op, ties, data.weights[i]);
        gather_add(row, m, law.value(), acc);
      }
    };
  });
}

// utilities and their vector-Jacobian product in one pass:
// out[0..m) = u_y(pi) = sum_i w_i P_i[y > pi^(k)],
// out[m..2m) = d/dpi sum_y q_y u_y(pi).
// Voters go four at a time through the interleaved kernel, the rest one by one;
// for k <= 64 (and m <= 16384, where both sums split voters alike) u is
// utilities' result bit for bit.
template <class Level>
void utilities_vjp_kernel(const RankingView<Level>& data, const double* pi, const double* q, int64_t k, Ties ties,
                          double* out) {
  const int64_t m = data.m;
  const size_t scratch = static_cast<size_t>(padded_levels(m + 1));
  sum_over_voter_ranges(data.n, 2 * m, out, [&]() {
    return [&data, pi, q, k, ties, m, mass = std::vector<double>(scratch), below = std::vector<double>(scratch),
            weight = std::vector<double>(scratch), value = std::vector<double>(scratch),
            grad = std::vector<double>(scratch), value4 = std::vector<double>(kGroup * scratch),
            grad4 = std::vector<double>(kGroup * scratch),
            slope4 = std::vector<double>(kGroup * scratch)](int64_t begin, int64_t end, double* acc) mutable {
      int64_t i = begin;
      for (; i + kGroup <= end; i += kGroup) {
        const auto [size, strict_rows] = group_levels(data, i);
        product_levels_with_gradient_x4(data.row(i), m, size, strict_rows, pi, q, k, data.weights + i, ties,
                                        value4.data(), grad4.data(), slope4.data());
        gather_add_x4(data.row(i), m, 1, value4.data(), acc);
        gather_add_x4(data.row(i), m, 1, grad4.data(), acc + m);
      }
      for (; i < end; ++i) {
        const Level* row = data.row(i);
        product_levels_with_gradient(row, m, data.n_levels[i], pi, q, k, data.weights[i], ties, mass.data(),
                                     below.data(), weight.data(), value.data(), grad.data());
        gather_add(row, m, value.data(), acc);
        gather_add(row, m, grad.data(), acc + m);
      }
    };
  });
}

// A block of the Jacobian of the utilities: out[r*n_cols + c] = d u_y(pi) / d pi_z for
// y = rows[r], z = cols[c], u_y(pi) = sum_i w_i P_i[y > pi^(k)]. For one voter, u_y
// depends on pi only through the mass strictly worse than y (below it) and the mass
// tied with it, so an entry is one of two derivatives of y's level: O(|rows| |cols|)
// per voter after one O(m) pass.
template <class Level>
void jacobian_block_kernel(const RankingView<Level>& data, const double* pi, int64_t k, Ties ties, const int64_t* rows,
                           int64_t n_rows, const int64_t* cols, int64_t n_cols, double* out) {
  const int64_t m = data.m;
  const size_t scratch = static_cast<size_t>(padded_levels(m + 1));
  sum_over_voters(data.n, n_rows * n_cols, out, [&]() {
    return [&data, pi, k, ties, rows, n_rows, cols, n_cols, m, mass = std::vector<double>(scratch),
            below = std::vector<double>(scratch), dL = std::vector<double>(static_cast<size_t>(n_rows)),
            dE = std::vector<double>(static_cast<size_t>(n_rows)),
            col_levels = std::vector<double>(static_cast<size_t>(n_cols))](int64_t i, double* acc) mutable {
      const Level* row = data.row(i);
      product_level_derivatives(row, m, data.n_levels[i], pi, k, data.weights[i], ties, rows, n_rows, mass.data(),
                                below.data(), dL.data(), dE.data());
      add_jacobian_entries(row, rows, n_rows, cols, n_cols, dL.data(), dE.data(), col_levels.data(), acc);
    };
  });
}

// ---------------------------------------------------------------------------
// "Pair" law: the distribution of one voter's best level under an operand,
// with the count generating function g_r(t) = E[t^c ; best = r] (c = members
// tied at the best level) evaluated at Gauss-Legendre nodes, for "uniform" ties.
// Level R stands for "no member" (the empty multiset).
// ---------------------------------------------------------------------------
template <class Level>
class PairLaw {
 public:
  PairLaw(int64_t m, int q)
      : q_(q),
        at_(static_cast<size_t>(m + 1)),
        below_(static_cast<size_t>(m + 1)),
        mass_(static_cast<size_t>(m + 1)),
        at_or_below_(static_cast<size_t>(m + 1)),
        gval_(static_cast<size_t>((m + 1) * q)),
        gder_(static_cast<size_t>((m + 1) * q)) {}

  void build(const Level* row, int64_t R, const Operand& op, Ties ties, const GaussLegendre& gl) {
    const bool counts = ties == Ties::uniform;
    std::fill_n(at_.begin(), R + 1, 0.0);
    std::fill_n(below_.begin(), R + 1, 0.0);
    if (counts) {
      std::fill_n(gval_.begin(), (R + 1) * q_, 0.0);
      std::fill_n(gder_.begin(), (R + 1) * q_, 0.0);
    }
    for (int64_t t = 0; t < op.n_products; ++t) {
      const double p = op.product_probs[t];
      if (p == 0.0) continue;
      const int64_t k = op.ks[t];
      const double* pi = op.policies + t * op.m;
      std::fill_n(mass_.begin(), R, 0.0);
      for (int64_t y = 0; y < op.m; ++y) mass_[row[y]] += pi[y];
      at_or_below_[R] = 0.0;
      for (int64_t r = R - 1; r >= 0; --r) at_or_below_[r] = at_or_below_[r + 1] + mass_[r];
      // F_r = P[all k draws at levels >= r] = ((L+E)/S)^k, from the level's fraction
      // and its complement (the better levels' mass) as pow_fraction needs them:
      // F_0 = 1 exactly, and P(best = r) = F_r - F_(r+1) telescopes to 1. F is
      // nonincreasing: once it underflows to 0, no worse level can be the best.
      const double total = at_or_below_[0];
      double F = 1.0, above = 0.0;
      for (int64_t r = 0; r < R && F > 0.0; ++r) {
        const double E = mass_[r], beaten_or_tied = above + E;
        const double F_next = pow_fraction(at_or_below_[r + 1] / total, beaten_or_tied / total, k);
        below_[r] += p * F_next;
        if (E > 0.0) {
          at_[r] += p * (F - F_next);
          if (counts) {
            double* gv = gval_.data() + r * q_;
            double* gd = gder_.data() + r * q_;
            const double l = at_or_below_[r + 1] / total, e = E / total, b = above / total;
            for (int j = 0; j < q_; ++j) {
              const double x = gl.nodes[j];
              // g = (l + e x)^k - l^k; the tie integral weighs it by g_A', whose
              // integral is <= 1, so its absolute error is all that matters.
              const double a = l + e * x;
              const double a_k1 = pow_fraction(a, b + e * (1.0 - x), k - 1);
              gv[j] += p * (a_k1 * a - F_next);
              gd[j] += p * static_cast<double>(k) * e * a_k1;
            }
          }
        }
        F = F_next;
        above = beaten_or_tied;
      }
    }
    if (op.n_multisets > 0) {
      std::fill_n(mass_.begin(), R + 1, 0.0);  // reused: mass of multisets by best level
      for (int64_t t = 0; t < op.n_multisets; ++t) {
        const double p = op.multiset_probs[t];
        if (p == 0.0) continue;
        const auto [best, count] = best_member_level(row, op.items, op.offsets[t], op.offsets[t + 1], R);
        at_[best] += p;
        mass_[best] += p;
        if (counts && best < R) {
          double* gv = gval_.data() + best * q_;
          double* gd = gder_.data() + best * q_;
          for (int j = 0; j < q_; ++j) {
            const double x = gl.nodes[j];
            gv[j] += p * ipow(x, count);
            gd[j] += p * static_cast<double>(count) * ipow(x, count - 1);
          }
        }
      }
      double worse = 0.0;
      for (int64_t r = R - 1; r >= 0; --r) {
        worse += mass_[r + 1];
        below_[r] += worse;
      }
    }
  }

  // P_i[M > X] for X = *this and a multiset M whose best level is r < R with c >= 1
  // members there: beats() with M's law in place of *this (all of its mass at r,
  // count generating function t^c), term for term.
  double beaten_by_multiset(int64_t r, int64_t c, Ties ties, const GaussLegendre& gl) const {
    const double below = below_[r], tied = at_[r];
    if (tied == 0.0) return below;
    switch (ties) {
      case Ties::strict: return below;
      case Ties::weak: return below + tied;
      case Ties::half: return below + 0.5 * tied;
      case Ties::uniform:
      default: {
        const double* gv = gval_.data() + r * q_;
        double tie = 0.0;
        for (int j = 0; j < q_; ++j) tie += gl.weights[j] * (static_cast<double>(c) * ipow(gl.nodes[j], c - 1)) * gv[j];
        return below + tie;
      }
    }
  }

  // P_i[A > B] for A = *this, B = other, both built on the same voter.
  double beats(const PairLaw& other, int64_t R, Ties ties, const GaussLegendre& gl) const {
    double total = 0.0;
    for (int64_t r = 0; r <= R; ++r) {
      const double a = at_[r];
      if (a == 0.0) continue;
      total += a * other.below_[r];
      const double b = other.at_[r];
      if (b == 0.0) continue;
      switch (ties) {
        case Ties::strict: break;
        case Ties::weak: total += a * b; break;
        case Ties::half: total += 0.5 * a * b; break;
        case Ties::uniform:
          if (r == R) {  // two empty multisets: no member on either side
            total += 0.5 * a * b;
          } else {
            // E[c_A/(c_A+c_B); both best at r] = int_0^1 g_A'(t) g_B(t) dt
            const double* gd = gder_.data() + r * q_;
            const double* gv = other.gval_.data() + r * q_;
            double tie = 0.0;
            for (int j = 0; j < q_; ++j) tie += gl.weights[j] * gd[j] * gv[j];
            total += tie;
          }
          break;
      }
    }
    return total;
  }

 private:
  int q_;
  std::vector<double> at_, below_, mass_, at_or_below_, gval_, gder_;
};

// win_rate: sum_i w_i P_i[A > B].
template <class Level>
double win_rate_kernel(const RankingView<Level>& data, const Operand& a, const Operand& b, Ties ties) {
  // Uniform ties integrate a polynomial of degree max_size(a) + max_size(b) - 1
  // exactly, which takes half that many Gauss-Legendre nodes; other conventions
  // need no counts at all.
  // Each size is at most kMaxK (Operand::check) or an array length, so the sum
  // cannot overflow.
  const int64_t draws = a.max_size() + b.max_size();
  if (ties == Ties::uniform && draws > kMaxUniformDraws)
    throw std::invalid_argument("a, b: uniform-tie win rates are exact up to " + std::to_string(kMaxUniformDraws) +
                                " draws in the two operands together, got " + std::to_string(a.max_size()) + " + " +
                                std::to_string(b.max_size()) + " (use smaller k or another tie convention)");
  const int q = ties == Ties::uniform ? static_cast<int>(std::max<int64_t>(1, (draws + 1) / 2)) : 1;
  const GaussLegendre gl(q);
  double out = 0.0;
  sum_over_voters(data.n, 1, &out, [&]() {
    return [&data, &a, &b, &gl, ties, law_a = PairLaw<Level>(data.m, q), law_b = PairLaw<Level>(data.m, q)](
               int64_t i, double* acc) mutable {
      const Level* row = data.row(i);
      const int64_t R = data.n_levels[i];
      law_a.build(row, R, a, ties, gl);
      law_b.build(row, R, b, ties, gl);
      acc[0] += data.weights[i] * law_a.beats(law_b, R, ties, gl);
    };
  });
  return out;
}

}  // namespace ualign
