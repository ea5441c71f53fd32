// Exact pricing for committee column generation (ualign/solvers/committee.py):
// maximise over committees S the objective sum_i v_i(S), where voter i's value
// depends on S only through the best level S reaches in voter i's ranking (and,
// for multisets under "uniform" ties, how many members of S tie there).
//
// * Sets (ties "half", "strict", "weak"): v_i(S) = max_{z in S} single[z, i]; S has
//   exactly `size` distinct members. A weighted max-coverage (facility location)
//   objective: monotone and submodular.
// * Multisets ("uniform" ties, size k, repeats allowed): with b the best level of S
//   in voter i's ranking and c the members of S at b, v_i(S) = value(z, i, c) for
//   any member z at level b, where
//   - committees (S against one response drawn from the dual q):
//     value(z, i, c) = below[z, i] + c/(c+1) * tied[z, i] (below: weighted dual
//     mass strictly worse than z; tied: at z's level);
//   - opponents with `size` outputs (S against a fixed operand X, e.g. pi^(k)):
//     value(z, i, c) = by_count[(z * n + i) * size + c - 1], tabulated
//     (opponent_tables.hpp).
//   Both are monotone and DR-submodular: the j-th copy of z adds no more than the
//   (j-1)-th did, and any addition adds no more to a larger multiset (break ties
//   by independent uniform priorities: S wins iff its best-scored member beats
//   X's, an OR of per-member events, and expectations of such coverage functions
//   are submodular).
//
// Depth-first branch and bound over members in decreasing order of marginal gain.
// A node (S, candidates R, r members still to add) is bounded by
//   v(S) + the largest r marginal gains of R at S
// (submodularity: each added member's gain only shrinks as S grows; for multisets
// the pool holds the gains of the 1st, 2nd, ... copy of each candidate), by the sum
// of each voter's best reachable value, and by a Lagrangian bound whose multipliers
// start at each voter's (r+2)-th best value among the candidates: for sets
// SetModel::lagrangian, then tightened by a few subgradient steps; for committee
// multisets MultisetModel::lagrangian_items at nodes with 3 or more members to add,
// at that start. On 64 x 100 pools at k = 8 the start leaves a fourth to a fifth of
// the nodes of a proof.
// The search keeps the `keep` best committees found (columns for the master LP); a
// node is pruned when its bound does not exceed max(target, the worst kept value
// once `keep` are kept). With `enough`, the search stops (as on a budget) once it
// keeps `keep` committees beating the target: column generation needs improving
// columns, not the best ones, until no committee beats the target. The reported
// bound is the largest bound of any pruned or unexplored node, or the best value
// found, whichever is larger: a valid upper bound on the optimum even when the node
// or time budget stops the search. Single-threaded: results do not depend on the
// thread count.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <utility>
#include <vector>

#include "parallel.hpp"

namespace ualign {

// Arrays are response-major: entry (z, i) at [z * n + i].
struct PricingProblem {
  int64_t n = 0;     // voters
  int64_t m = 0;     // responses
  int64_t size = 0;  // members of a committee
  bool multiset = false;
  const double* single = nullptr;    // sets: voter i's value when z is the best member
  const double* below = nullptr;     // multisets (committees)
  const double* tied = nullptr;      // multisets (committees)
  const double* by_count = nullptr;  // multisets (opponents): replaces below and tied when set
  const int64_t* level = nullptr;    // multisets: z's level in voter i's ranking
};

struct PricingOutcome {
  std::vector<std::vector<int64_t>> committees;  // the best found (at most `keep`), best first, each sorted
  std::vector<double> values;                    // their objectives
  double bound = 0.0;                            // >= every committee's objective (and >= value)
  bool finished = false;                         // the search ran to the end (no budget stop)
  int64_t nodes = 0;
};

namespace pricing_detail {

inline double share(int64_t count) { return double(count) / double(count + 1); }

// Multisets: voter i's value when S's best level in i's ranking is z's, with c >= 1
// members of S there.
inline double multiset_value(const PricingProblem& p, int64_t z, int64_t i, int64_t c) {
  if (p.by_count) return p.by_count[(z * p.n + i) * p.size + c - 1];
  return p.below[z * p.n + i] + share(c) * p.tied[z * p.n + i];
}

// Objective of a committee (any members, sorted or not), straight from the definition.
inline double committee_value(const PricingProblem& p, const std::vector<int64_t>& S) {
  const int64_t n = p.n;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (!p.multiset) {
      double best = 0.0;
      for (int64_t z : S) best = std::max(best, p.single[z * n + i]);
      total += best;
      continue;
    }
    int64_t best = std::numeric_limits<int64_t>::max(), count = 0, at = -1;
    for (int64_t z : S) {
      const int64_t l = p.level[z * n + i];
      if (l < best)
        best = l, count = 1, at = z;
      else if (l == best)
        ++count;
    }
    if (at >= 0) total += multiset_value(p, at, i, count);
  }
  return total;
}

// The Lagrangian bounds start from u_i = voter i's (r + kLagrangeRankOffset)-th best
// value among the candidates (or her value now, if larger), r the members to add:
// near the best u for "r of these candidates serve each voter", where starting from
// the values now leaves the subgradient steps most of the way to go. Measured on
// 64 x 100 pools at k = 8 (final proofs): offsets 1, 2, 4, 6 left 164k, 132k, 139k,
// 195k nodes of a multiset proof that took 631k from u = now; offsets 1, 2, 3, 5 left
// 38.6k, 30.6k, 25.5k, 23.6k nodes of a set proof ("half" ties) that took 112k.
inline constexpr int64_t kLagrangeRankOffset = 2;

// Sets: per-voter current value `cur`.
class SetModel {
 public:
  SetModel(const PricingProblem& p, std::vector<int64_t> candidates) : n_(p.n), cand_(std::move(candidates)) {
    // keep only the candidates' rows, and drop voters whose value is the same for
    // every candidate (a constant once S is non-empty)
    std::vector<int64_t> voters;
    for (int64_t i = 0; i < p.n && !cand_.empty(); ++i) {
      const double first = p.single[cand_.front() * p.n + i];
      bool constant = true;
      for (int64_t z : cand_) constant = constant && p.single[z * p.n + i] == first;
      if (constant)
        constant_ += first;
      else
        voters.push_back(i);
    }
    n_ = int64_t(voters.size());
    rows_.resize(cand_.size() * size_t(n_));
    for (size_t c = 0; c < cand_.size(); ++c)
      for (int64_t j = 0; j < n_; ++j) rows_[c * n_ + j] = p.single[cand_[c] * p.n + voters[j]];
  }

  int64_t candidates() const { return int64_t(cand_.size()); }
  int64_t response(int64_t c) const { return cand_[c]; }
  static constexpr bool repeats = false;
  void reserve(int64_t depth) { cur_.assign(size_t(depth + 1) * n_, 0.0); }

  double value(int64_t depth) const {
    const double* cur = cur_.data() + depth * n_;
    double total = 0.0;
    for (int64_t i = 0; i < n_; ++i) total += cur[i];
    return total + constant_;  // every committee is non-empty: the constant voters always count
  }

  // gains[c] = marginal gain of candidate R[c]; returns the per-voter cap on the
  // total gain of any additions from R.
  double gains(int64_t depth, const std::vector<int64_t>& R, int64_t /*r*/, int64_t /*copies*/,
               std::vector<double>& gains, std::vector<double>& scratch) const {
    const double* cur = cur_.data() + depth * n_;
    scratch.assign(cur, cur + n_);
    gains.resize(R.size());
    for (size_t c = 0; c < R.size(); ++c) {
      const double* row = rows_.data() + R[c] * n_;
      double g = 0.0;
      for (int64_t i = 0; i < n_; ++i) {
        g += std::max(row[i] - cur[i], 0.0);
        scratch[i] = std::max(scratch[i], row[i]);
      }
      gains[c] = g;
    }
    double cap = 0.0;
    for (int64_t i = 0; i < n_; ++i) cap += scratch[i] - cur[i];
    return cap;
  }

  // Lagrangian bound: for any u >= cur (per voter),
  //   v(S + R') <= constant + sum_i u_i + sum_{z in R'} sum_i (single[z, i] - u_i)^+,
  // since each voter's best over S + R' is at most u_i plus the excess of any one
  // member over u_i. A few projected subgradient steps (Polyak step towards
  // `threshold`) on u from the start of kLagrangeRankOffset; returns the smallest
  // bound on the node seen, and with its u bounds every child p (R[p] plus r - 1
  // members of R[p+1..]) in `child`.
  double lagrangian(int64_t depth, const std::vector<int64_t>& R, int64_t r, double threshold, int64_t steps,
                    std::vector<double>& child) const {
    const double* cur = cur_.data() + depth * n_;
    const size_t count = R.size();
    std::vector<double> u(cur, cur + n_), excess(count), best_excess, sub(n_);
    std::vector<int64_t> order(count);
    const size_t rank = size_t(r + kLagrangeRankOffset);
    if (rank <= count) {  // start from each voter's rank-th best value among R (see kLagrangeRankOffset)
      std::vector<double> column(count);
      for (int64_t i = 0; i < n_; ++i) {
        for (size_t c = 0; c < count; ++c) column[c] = rows_[R[c] * n_ + i];
        std::nth_element(column.begin(), column.begin() + (rank - 1), column.end(), std::greater<double>());
        u[i] = std::max(u[i], column[rank - 1]);
      }
    }
    double best = std::numeric_limits<double>::infinity(), best_base = 0.0;
    for (int64_t step = 0; step < steps; ++step) {
      double base = constant_;
      for (int64_t i = 0; i < n_; ++i) base += u[i];
      for (size_t c = 0; c < count; ++c) {
        const double* row = rows_.data() + R[c] * n_;
        double e = 0.0;
        for (int64_t i = 0; i < n_; ++i) e += std::max(row[i] - u[i], 0.0);
        excess[c] = e;
      }
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + r, order.end(), [&](int64_t a, int64_t b) {
        return excess[a] > excess[b] || (excess[a] == excess[b] && a < b);
      });
      double bound = base;
      for (int64_t j = 0; j < r; ++j) bound += excess[order[j]];
      if (bound < best) best = bound, best_base = base, best_excess = excess;
      if (best <= threshold) break;
      // subgradient in u_i: 1 - (members of the top r that exceed u_i)
      std::fill(sub.begin(), sub.end(), 1.0);
      for (int64_t j = 0; j < r; ++j) {
        const double* row = rows_.data() + R[order[j]] * n_;
        for (int64_t i = 0; i < n_; ++i) sub[i] -= row[i] > u[i] ? 1.0 : 0.0;
      }
      double norm = 0.0;
      for (int64_t i = 0; i < n_; ++i) norm += sub[i] * sub[i];
      if (norm == 0.0) break;  // u minimises the bound
      const double theta = (bound - threshold) / norm;
      for (int64_t i = 0; i < n_; ++i) u[i] = std::max(cur[i], u[i] - theta * sub[i]);
    }
    // child p: best_base + excess[p] + the r - 1 largest excesses of R[p+1..]
    child.assign(count, -std::numeric_limits<double>::infinity());
    std::priority_queue<double, std::vector<double>, std::greater<double>> heap;
    double top = 0.0;
    for (size_t p = count; p-- > 0;) {
      if (int64_t(heap.size()) == r - 1) child[p] = best_base + best_excess[p] + top;
      const double e = best_excess[p];
      if (int64_t(heap.size()) < r - 1) {
        heap.push(e), top += e;
      } else if (r > 1 && e > heap.top()) {
        top += e - heap.top();
        heap.pop(), heap.push(e);
      }
    }
    return best;
  }

  void add(int64_t depth, int64_t c) {
    const double* cur = cur_.data() + depth * n_;
    double* next = cur_.data() + (depth + 1) * n_;
    const double* row = rows_.data() + c * n_;
    for (int64_t i = 0; i < n_; ++i) next[i] = std::max(cur[i], row[i]);
  }

 private:
  int64_t n_;
  std::vector<int64_t> cand_;
  std::vector<double> rows_;
  std::vector<double> cur_;
  double constant_ = 0.0;
};

// Multisets: per voter the best level, the members tied there and one of them.
class MultisetModel {
 public:
  explicit MultisetModel(const PricingProblem& p)
      : p_(p),
        n_(p.n),
        share_(size_t(p.size) + 1),
        order_(size_t(p.n * p.m)),
        start_(size_t(p.n * (p.m + 1))),
        slot_(size_t(p.m)),
        now_(p.n),
        u_(p.n) {
    for (int64_t c = 0; c <= p.size; ++c) share_[c] = share(c);  // the bits of share(c), without a division
    // each voter's responses by level, and where each level starts among them
    for (int64_t i = 0; i < p.n; ++i) {
      int64_t* start = start_.data() + i * (p.m + 1);
      for (int64_t z = 0; z < p.m; ++z) {
        const int64_t l = p.level[z * p.n + i];
        if (l < 0 || l >= p.m) throw std::invalid_argument("level: expected levels in [0, m)");
        ++start[l + 1];
      }
      for (int64_t l = 0; l < p.m; ++l) {
        level_ties_ = level_ties_ || start[l + 1] > 1;
        start[l + 1] += start[l];
      }
      std::vector<int64_t> next(start, start + p.m);
      for (int64_t z = 0; z < p.m; ++z) order_[i * p.m + next[p.level[z * p.n + i]]++] = z;
    }
  }

  int64_t candidates() const { return p_.m; }
  int64_t response(int64_t c) const { return c; }
  static constexpr bool repeats = true;
  void reserve(int64_t depth) {
    const size_t cells = size_t(depth + 1) * n_;
    best_.assign(cells, std::numeric_limits<int64_t>::max());
    count_.assign(cells, 0);
    at_.assign(cells, -1);
  }

  double value(int64_t depth) const {
    double total = 0.0;
    const size_t o = size_t(depth) * n_;
    for (int64_t i = 0; i < n_; ++i) total += current(o, i, 0);
    return total;
  }

  // Whether lagrangian_items() may follow gains() at a node with r members to add.
  bool lagrangian(int64_t r) const { return p_.by_count == nullptr && r >= kMinRemaining; }

  // gains[c * copies + j]: the gain of the (j+1)-th copy of R[c] added to S alone.
  // Returns the per-voter cap on the total gain of r more members from R: voter i
  // at best gets r more members at the best level that R or S reaches. Where
  // lagrangian(r), also keeps what lagrangian_items() needs.
  double gains(int64_t depth, const std::vector<int64_t>& R, int64_t r, int64_t copies, std::vector<double>& gains,
               std::vector<double>& scratch) const {
    const size_t o = size_t(depth) * n_;
    gains.assign(R.size() * copies, 0.0);
    scratch.resize(n_);
    for (int64_t i = 0; i < n_; ++i) {
      now_[i] = current(o, i, 0);
      scratch[i] = current(o, i, r);
    }
    if (p_.by_count) {
      for (int64_t z : R) {
        const int64_t* level = p_.level + z * n_;
        for (int64_t i = 0; i < n_; ++i)
          if (level[i] < best_[o + i]) scratch[i] = std::max(scratch[i], value_of(z, i, r));
      }
      for (size_t c = 0; c < R.size(); ++c) tabulated_gains(o, R[c], copies, gains.data() + c * copies);
    } else {
      committee_gains(o, R, r, copies, gains, scratch);
    }
    double cap = 0.0;
    for (int64_t i = 0; i < n_; ++i) cap += scratch[i] - now_[i];
    return cap;
  }

  // The Lagrangian bound at the node of the last gains() call (committees): for any
  // u >= the voters' values now, v(S + R') <= sum_i u_i + the largest r items of R',
  // where (voters ranking z above S's best level) z's first copy is an item worth
  // sum_i (below + tied/2 - u_i)^+, or at least tied/6 where another candidate shares
  // z's level (z may then be the second member there), and its c-th copy is worth
  // (share(c) - share(c-1)) tied; voters with z at S's best level add the next shares
  // of the members tied there to z's copies, as in gains(). u_i: voter i's
  // (r + kLagrangeRankOffset)-th best first-copy value among the candidates, or her
  // value now if larger (fixed rather than tuned by subgradient steps, which cost
  // more than they prune). items (per candidate, `copies` each, nonincreasing); returns sum_i u_i.
  double lagrangian_items(int64_t copies, const std::vector<double>& gains, std::vector<double>& items) const {
    const size_t count = gains.size() / copies;
    double base = 0.0;
    for (int64_t i = 0; i < n_; ++i) {
      u_[i] = std::max(now_[i], kth_[i]);
      base += u_[i];
    }
    first_.assign(count, 0.0);
    const int64_t* best = best_.data() + node_;
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t* order = order_.data() + i * p_.m;
      const int64_t* start = start_.data() + i * (p_.m + 1);
      const int64_t end = start[std::min(best[i], p_.m)];
      for (int64_t group = 0; group < end;) {  // the candidates of one level at a time
        const int64_t next = start[p_.level[order[group] * n_ + i] + 1];
        int64_t members = 0;
        if (level_ties_)
          for (int64_t j = group; j < next; ++j) members += slot_[order[j]] >= 0;
        const double floor = members > 1 ? share_[2] - share_[1] : 0.0;
        for (int64_t j = group; j < next; ++j) {
          const int64_t z = order[j], c = slot_[z];
          if (c < 0) continue;
          const double below = p_.below[z * n_ + i], tied = p_.tied[z * n_ + i];
          first_[c] += std::max(below + share_[1] * tied - u_[i], floor * tied);
        }
        group = next;
      }
    }
    items = gains;
    for (size_t c = 0; c < count; ++c) {
      double* item = items.data() + c * copies;
      item[0] = same_first_[c] + first_[c];
      if (copies > 1) item[0] = std::max(item[0], item[1]);
    }
    return base;
  }

  void add(int64_t depth, int64_t z) {
    const size_t o = size_t(depth) * n_, t = o + n_;
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t l = p_.level[z * n_ + i];
      if (l < best_[o + i]) {
        best_[t + i] = l, count_[t + i] = 1, at_[t + i] = z;
      } else {
        best_[t + i] = best_[o + i], at_[t + i] = at_[o + i];
        count_[t + i] = count_[o + i] + (l == best_[o + i]);
      }
    }
  }

 private:
  // The Lagrangian bound runs at nodes with at least this many members to add (with
  // fewer, the gains bound prunes as well).
  static constexpr int64_t kMinRemaining = 3;

  // multiset_value with the share table.
  double value_of(int64_t z, int64_t i, int64_t c) const {
    if (p_.by_count) return p_.by_count[(z * n_ + i) * p_.size + c - 1];
    return p_.below[z * n_ + i] + share_[c] * p_.tied[z * n_ + i];
  }

  // Voter i's value at the node stored at offset o with `more` members added at its
  // best level (0 while S is empty).
  double current(size_t o, int64_t i, int64_t more) const {
    const int64_t z = at_[o + i];
    return z < 0 ? 0.0 : value_of(z, i, count_[o + i] + more);
  }

  // gains() for committees, voter by voter over the candidates she ranks at or above
  // S's best level only (deep in the search, few of them). A voter who ranks z above
  // S's best gains below + tied/2 - now from z's first copy and (share(c) -
  // share(c-1)) tied from its c-th, so those voters enter through two sums per
  // candidate (each summed over voters in order); a voter with z at S's best level
  // gains the next shares of the members tied there. For the Lagrangian bound, kth_[i]
  // is voter i's (r + kLagrangeRankOffset)-th best first-copy value among the candidates.
  void committee_gains(size_t o, const std::vector<int64_t>& R, int64_t r, int64_t copies, std::vector<double>& gains,
                       std::vector<double>& scratch) const {
    const size_t count = R.size();
    const bool lagrange = r >= kMinRemaining;
    const int64_t rank = r + kLagrangeRankOffset;
    const double none = -std::numeric_limits<double>::infinity();
    std::fill(slot_.begin(), slot_.end(), -1);
    for (size_t c = 0; c < count; ++c) slot_[R[c]] = int64_t(c);
    node_ = o;
    first_.assign(count, 0.0);
    better_tied_.assign(count, 0.0);
    same_first_.resize(count);
    if (lagrange) kth_.assign(n_, none);
    const int64_t* best = best_.data() + o;
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t* order = order_.data() + i * p_.m;
      const int64_t* start = start_.data() + i * (p_.m + 1);
      const int64_t b = std::min(best[i], p_.m);
      if (b < p_.m) {  // candidates at S's best level: the next shares of the members tied there
        const int64_t members = count_[o + i];
        const double at_best = p_.tied[at_[o + i] * n_ + i];
        for (int64_t j = start[b]; j < start[b + 1]; ++j) {
          const int64_t c = slot_[order[j]];
          if (c < 0) continue;
          double* g = gains.data() + c * copies;
          for (int64_t copy = 1; copy <= copies; ++copy)
            g[copy - 1] += (share_[members + copy] - share_[members + copy - 1]) * at_best;
        }
      }
      // candidates ranked above S's best, best first
      int64_t seen = 0;
      for (int64_t j = 0; j < start[b]; ++j) {
        const int64_t z = order[j], c = slot_[z];
        if (c < 0) continue;
        const double below = p_.below[z * n_ + i], tied = p_.tied[z * n_ + i];
        const double alone = below + share_[1] * tied;
        first_[c] += alone - now_[i];
        better_tied_[c] += tied;
        scratch[i] = std::max(scratch[i], below + share_[r] * tied);
        if (lagrange && ++seen == rank) kth_[i] = alone;
      }
    }
    for (size_t c = 0; c < count; ++c) {
      double* g = gains.data() + c * copies;
      if (lagrange) same_first_[c] = g[0];
      g[0] += first_[c];
      for (int64_t j = 2; j <= copies; ++j) g[j - 1] += (share_[j] - share_[j - 1]) * better_tied_[c];
    }
  }

  // gains() for tabulated values (opponents), voter by voter.
  void tabulated_gains(size_t o, int64_t z, int64_t copies, double* g) const {
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t l = p_.level[z * n_ + i], b = best_[o + i];
      if (l > b) continue;
      double previous = now_[i];
      for (int64_t j = 1; j <= copies; ++j) {
        const double now = l < b ? value_of(z, i, j) : current(o, i, j);
        g[j - 1] += now - previous;
        previous = now;
      }
    }
  }

  const PricingProblem& p_;
  int64_t n_;
  bool level_ties_ = false;     // some voter ranks two responses at one level
  std::vector<double> share_;   // share_[c] = share(c), c <= size
  std::vector<int64_t> order_;  // voter i's responses by level: order_[i * m + j]
  std::vector<int64_t> start_;  // where level l starts among them: start_[i * (m + 1) + l]
  std::vector<int64_t> best_, count_, at_;
  // the node of the last gains() call (single-threaded search): its offset, each
  // candidate's index in R (-1 for other responses), and what lagrangian_items() reads
  mutable size_t node_ = 0;
  mutable std::vector<int64_t> slot_;
  mutable std::vector<double> now_, first_, better_tied_, same_first_, kth_, u_;
};

// Copies of one candidate whose gains are computed exactly; further copies are
// bounded by the last one computed (gains never grow with the copy number).
inline constexpr int64_t kExplicitCopies = 16;
// Subgradient steps of the Lagrangian bound per node (sets).
inline constexpr int64_t kLagrangeSteps = 12;

template <class Model>
class Search {
 public:
  Search(Model& model, int64_t size, int64_t keep, double target, int64_t max_nodes, double seconds, bool enough)
      : model_(model),
        size_(size),
        keep_(keep),
        target_(target),
        max_nodes_(max_nodes),
        enough_(enough),
        deadline_(std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                         std::chrono::duration<double>(seconds))) {
    model_.reserve(size);
  }

  // A committee (responses, sorted) joins the `keep` best found so far.
  void offer(const std::vector<int64_t>& committee, double value) {
    if (value <= threshold()) return;
    for (const auto& [v, S] : found_)
      if (S == committee) return;
    found_.emplace_back(value, committee);
    std::stable_sort(found_.begin(), found_.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    if (int64_t(found_.size()) > keep_) found_.pop_back();
    satisfied_ = enough_ && int64_t(found_.size()) == keep_ && found_.back().first > target_;
  }

  void run() {
    std::vector<int64_t> R(model_.candidates());
    std::iota(R.begin(), R.end(), 0);
    visit(0, size_, R, model_.value(0));
  }

  // the committees found, best first (at most `keep`)
  const std::vector<std::pair<double, std::vector<int64_t>>>& found() const { return found_; }
  double bound() const {
    return std::max({found_.empty() ? -std::numeric_limits<double>::infinity() : found_[0].first, pruned_, open_});
  }
  bool finished() const { return !stopped_; }
  int64_t nodes() const { return nodes_; }

 private:
  // Nodes at or below it are pruned: the target, or the worst of the kept committees
  // once there are `keep` (never above the best found, so the bound stays exact).
  double threshold() const { return int64_t(found_.size()) < keep_ ? target_ : std::max(target_, found_.back().first); }

  bool out_of_budget() {
    if (nodes_ >= max_nodes_ || satisfied_) return true;
    return (nodes_ & 255) == 0 && std::chrono::steady_clock::now() >= deadline_;
  }

  void prune(double bound) { pruned_ = std::max(pruned_, bound); }

  // top[p] = the largest sum of r gains from the pool of R[p..] (minus infinity when
  // R[p..] cannot fill r distinct places).
  void suffix_bounds(int64_t r, int64_t copies, const std::vector<double>& gains, std::vector<double>& top) const {
    const size_t count = gains.size() / copies;
    top.assign(count, -std::numeric_limits<double>::infinity());
    if (!Model::repeats) {  // sorted decreasing: the r gains from p on
      for (size_t p = 0; p + r <= count; ++p) {
        double s = 0.0;
        for (int64_t j = 0; j < r; ++j) s += gains[p + j];
        top[p] = s;
      }
      return;
    }
    std::priority_queue<double, std::vector<double>, std::greater<double>> heap;  // the r largest so far
    double sum = 0.0;
    for (size_t p = count; p-- > 0;) {
      for (int64_t j = 0; j < r; ++j) {
        const double g = gains[p * copies + std::min(j, copies - 1)];
        if (int64_t(heap.size()) < r) {
          heap.push(g), sum += g;
        } else if (g > heap.top()) {
          sum += g - heap.top();
          heap.pop(), heap.push(g);
        } else {
          break;  // the later copies gain no more
        }
      }
      top[p] = sum;
    }
  }

  // to[c * copies + j] = from[order[c] * copies + j]: per-candidate values in the node's order.
  static void in_order(const std::vector<int64_t>& order, int64_t copies, const std::vector<double>& from,
                       std::vector<double>& to) {
    to.resize(from.size());
    for (size_t c = 0; c < order.size(); ++c)
      std::copy_n(from.data() + order[c] * copies, copies, to.data() + c * copies);
  }

  void visit(int64_t depth, int64_t r, const std::vector<int64_t>& R, double value) {
    ++nodes_;
    const int64_t copies = Model::repeats ? std::min(r, kExplicitCopies) : 1;
    std::vector<double> gains, scratch, top;
    const double cap = model_.gains(depth, R, r, copies, gains, scratch);
    // candidates in decreasing order of the first copy's gain (ties: lower index first)
    std::vector<int64_t> order(R.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return gains[a * copies] > gains[b * copies]; });
    std::vector<int64_t> sorted(R.size());
    for (size_t c = 0; c < order.size(); ++c) sorted[c] = R[order[c]];
    std::vector<double> sorted_gains;
    in_order(order, copies, gains, sorted_gains);
    suffix_bounds(r, copies, sorted_gains, top);
    if (sorted.empty() || value + std::min(top[0], cap) <= threshold()) {
      if (!sorted.empty()) prune(value + std::min(top[0], cap));
      return;
    }
    if (r == 1) {  // the children are leaves, their values exact
      for (size_t p = 0; p < sorted.size(); ++p) {
        if (value + sorted_gains[p * copies] <= threshold()) {
          prune(value + sorted_gains[p * copies]);
          break;
        }
        chosen_.push_back(sorted[p]);
        offer_chosen(value + sorted_gains[p * copies]);
        chosen_.pop_back();
      }
      return;
    }
    // the Lagrangian bound of the node, and in top_lagrange_ of each child
    bool lagrange = true;
    double bound = 0.0;
    if constexpr (Model::repeats) {
      lagrange = model_.lagrangian(r);
      if (lagrange) {
        const double base = model_.lagrangian_items(copies, gains, items_);
        in_order(order, copies, items_, sorted_items_);
        suffix_bounds(r, copies, sorted_items_, top_lagrange_);
        for (double& child : top_lagrange_) child += base;
        bound = top_lagrange_[0];
      }
    } else {
      bound = model_.lagrangian(depth, sorted, r, threshold(), kLagrangeSteps, top_lagrange_);
    }
    if (lagrange) {
      if (bound <= threshold()) {
        prune(bound);
        return;
      }
      for (size_t p = 0; p < sorted.size(); ++p) top[p] = std::min(top[p] + value, top_lagrange_[p]) - value;
    }
    for (size_t p = 0; p < sorted.size(); ++p) {
      const double child = value + top[p];
      if (child <= threshold()) {
        prune(child);
        return;
      }
      if (out_of_budget()) {
        stopped_ = true;
        open_ = std::max(open_, child);
        return;
      }
      model_.add(depth, sorted[p]);
      chosen_.push_back(sorted[p]);
      const std::vector<int64_t> rest(sorted.begin() + p + (Model::repeats ? 0 : 1), sorted.end());
      visit(depth + 1, r - 1, rest, model_.value(depth + 1));
      chosen_.pop_back();
      if (stopped_) {
        if (p + 1 < sorted.size()) open_ = std::max(open_, value + top[p + 1]);
        return;
      }
    }
  }

  void offer_chosen(double value) {
    std::vector<int64_t> committee;
    for (int64_t c : chosen_) committee.push_back(model_.response(c));
    std::sort(committee.begin(), committee.end());
    offer(committee, value);
  }

  Model& model_;
  int64_t size_;
  int64_t keep_;
  double target_;
  int64_t max_nodes_;
  bool enough_;
  bool satisfied_ = false;
  std::chrono::steady_clock::time_point deadline_;
  std::vector<std::pair<double, std::vector<int64_t>>> found_;
  std::vector<double> top_lagrange_, items_, sorted_items_;
  double pruned_ = -std::numeric_limits<double>::infinity();
  double open_ = -std::numeric_limits<double>::infinity();
  bool stopped_ = false;
  int64_t nodes_ = 0;
  std::vector<int64_t> chosen_;
};

// Candidates for sets: drop responses dominated by another (single[z] <= single[z']
// for every voter; equal rows keep the lowest index) while at least `size` remain:
// in any committee a dominated member can be swapped for a missing one at no loss.
inline std::vector<int64_t> undominated(const PricingProblem& p) {
  const int64_t n = p.n, m = p.m;
  std::vector<char> dropped(m, 0);
  int64_t left = m;
  for (int64_t z = 0; z < m && left > p.size; ++z) {
    for (int64_t u = 0; u < m; ++u) {
      if (u == z || dropped[u]) continue;
      const double* a = p.single + z * n;
      const double* b = p.single + u * n;
      bool le = true, equal = true;
      for (int64_t i = 0; i < n && le; ++i) le = a[i] <= b[i], equal = equal && a[i] == b[i];
      if (le && (!equal || u < z)) {
        dropped[z] = 1, --left;
        break;
      }
    }
  }
  std::vector<int64_t> out;
  for (int64_t z = 0; z < m; ++z)
    if (!dropped[z]) out.push_back(z);
  return out;
}

}  // namespace pricing_detail

// Maximise the pricing objective over committees of p.size members (distinct for
// sets); keeps the `keep` best committees found. `start`: a committee whose value
// seeds the incumbent (may be empty).
// Nodes whose bound is <= target are pruned as well: with target below the optimum
// the search is exact; otherwise it may stop at proving max <= target. `enough`:
// stop once `keep` committees beat the target (Search).
inline PricingOutcome price_committee(const PricingProblem& p, const std::vector<int64_t>& start, int64_t keep,
                                      double target, int64_t max_nodes, double seconds, bool enough) {
  using namespace pricing_detail;
  if (p.n < 0 || p.m < 1 || p.size < 1 || (!p.multiset && p.size > p.m) || keep < 1)
    throw std::invalid_argument("pricing: bad problem dimensions");
  PricingOutcome out;
  auto finish = [&](auto& search) {
    if (!start.empty()) {
      std::vector<int64_t> sorted = start;
      std::sort(sorted.begin(), sorted.end());
      search.offer(sorted, committee_value(p, sorted));
    }
    search.run();
    out.bound = search.bound();
    for (const auto& [value, committee] : search.found()) {
      out.committees.push_back(committee);
      out.values.push_back(committee_value(p, committee));
      out.bound = std::max(out.bound, out.values.back());
    }
    out.finished = search.finished();
    out.nodes = search.nodes();
  };
  if (p.multiset) {
    MultisetModel model(p);
    Search<MultisetModel> search(model, p.size, keep, target, max_nodes, seconds, enough);
    finish(search);
  } else {
    SetModel model(p, undominated(p));
    Search<SetModel> search(model, p.size, keep, target, max_nodes, seconds, enough);
    finish(search);
  }
  return out;
}

// The heuristics' step (greedy and local search, committee.py): the pricing value of
// S + {z} for every response z, out[z] = sum_i w[i] * (level[i, z] < best[i] ? alone[i, z]
// : level[i, z] == best[i] ? same[i] : old[i]), where best[i] is S's best level in voter
// i's ranking (m when S is empty), old[i] her value now, same[i] her value with one
// more member at that level and alone[i, z] her value with z alone at the top.
// Voter-major (i, z) arrays, summed over voters with the fixed partition of
// parallel.hpp (the same bits for any thread count). Levels come as doubles (exact
// integers) so that the compare-and-select loop vectorises.
inline void committee_add_values(int64_t n, int64_t m, const double* level, const double* alone, const double* best,
                                 const double* same, const double* old, const double* w, double* out) {
  sum_over_voter_ranges(n, m, out, [&]() {
    return [=](int64_t begin, int64_t end, double* acc) {
      for (int64_t i = begin; i < end; ++i) {
        const double* row = level + i * m;
        const double* alone_row = alone + i * m;
        const double b = best[i], weight = w[i], at_best = same[i], now = old[i];
        for (int64_t z = 0; z < m; ++z) acc[z] += weight * (row[z] < b ? alone_row[z] : row[z] == b ? at_best : now);
      }
    };
  });
}

}  // namespace ualign
