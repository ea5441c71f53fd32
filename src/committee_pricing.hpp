// Exact pricing for committee column generation (ualign/solvers/committee.py):
// maximise over committees S the objective sum_i v_i(S), where voter i's value
// depends on S only through the best level S reaches in voter i's ranking (and,
// for multisets under "uniform" ties, how many members of S tie there).
//
// * Sets (ties "half", "strict", "weak"): v_i(S) = max_{z in S} single[z, i]; S has
//   exactly `size` distinct members. A weighted max-coverage (facility location)
//   objective: monotone and submodular.
// * Multisets ("uniform" ties, size k, repeats allowed): with b the best level of S
//   in voter i's ranking and c the members of S at b,
//   v_i(S) = below[z, i] + c/(c+1) * tied[z, i] for any member z at level b
//   (below: weighted dual mass strictly worse than z; tied: at z's level). Monotone
//   and DR-submodular: the j-th copy of z adds no more than the (j-1)-th did, and
//   any addition adds no more to a larger multiset.
//
// Depth-first branch and bound over members in decreasing order of marginal gain.
// A node (S, candidates R, r members still to add) is bounded by
//   v(S) + the largest r marginal gains of R at S
// (submodularity: each added member's gain only shrinks as S grows; for multisets
// the pool holds the gains of the 1st, 2nd, ... copy of each candidate), and for
// sets also by sum_i max(v_i(S), max_{z in R} single[z, i]) (each voter's best).
// A node is pruned when its bound does not exceed max(incumbent, target); the
// reported bound is the largest bound of any pruned or unexplored node, or the
// incumbent, whichever is larger: a valid upper bound on the optimum even when the
// node or time budget stops the search. Single-threaded: results do not depend on
// the thread count.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <vector>

namespace ualign {

// Arrays are response-major: entry (z, i) at [z * n + i].
struct PricingProblem {
  int64_t n = 0;     // voters
  int64_t m = 0;     // responses
  int64_t size = 0;  // members of a committee
  bool multiset = false;
  const double* single = nullptr;   // sets: voter i's value when z is the best member
  const double* below = nullptr;    // multisets
  const double* tied = nullptr;     // multisets
  const int64_t* level = nullptr;   // multisets: z's level in voter i's ranking
};

struct PricingOutcome {
  std::vector<int64_t> committee;  // best committee found, sorted
  double value = 0.0;              // its objective
  double bound = 0.0;              // >= every committee's objective (and >= value)
  bool finished = false;           // the search ran to the end (no budget stop)
  int64_t nodes = 0;
};

namespace pricing_detail {

inline double share(int64_t count) { return double(count) / double(count + 1); }

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
      if (l < best) best = l, count = 1, at = z;
      else if (l == best) ++count;
    }
    if (at >= 0) total += p.below[at * n + i] + share(count) * p.tied[at * n + i];
  }
  return total;
}

// Sets: per-voter current value `cur`.
class SetModel {
 public:
  SetModel(const PricingProblem& p, std::vector<int64_t> candidates) : n_(p.n), cand_(std::move(candidates)) {
    // keep only the candidates' rows, and drop voters whose value is the same for
    // every candidate (a constant once S is non-empty)
    std::vector<int64_t> voters;
    for (int64_t i = 0; i < p.n; ++i) {
      const double first = p.single[cand_[0] * p.n + i];
      bool constant = true;
      for (int64_t z : cand_) constant = constant && p.single[z * p.n + i] == first;
      if (constant) constant_ += first;
      else voters.push_back(i);
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
    const double* cur = &cur_[depth * n_];
    double total = 0.0;
    for (int64_t i = 0; i < n_; ++i) total += cur[i];
    return total + constant_;  // every committee is non-empty: the constant voters always count
  }

  // gains[c] = marginal gain of candidate R[c]; returns the per-voter cap on the
  // total gain of any additions from R.
  double gains(int64_t depth, const std::vector<int64_t>& R, int64_t /*copies*/, std::vector<double>& gains,
               std::vector<double>& scratch) const {
    const double* cur = &cur_[depth * n_];
    scratch.assign(cur, cur + n_);
    gains.resize(R.size());
    for (size_t c = 0; c < R.size(); ++c) {
      const double* row = &rows_[R[c] * n_];
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

  void add(int64_t depth, int64_t c) {
    const double* cur = &cur_[depth * n_];
    double* next = &cur_[(depth + 1) * n_];
    const double* row = &rows_[c * n_];
    for (int64_t i = 0; i < n_; ++i) next[i] = std::max(cur[i], row[i]);
  }

 private:
  int64_t n_;
  std::vector<int64_t> cand_;
  std::vector<double> rows_;
  std::vector<double> cur_;
  double constant_ = 0.0;
};

// Multisets: per voter the best level, members tied there, and that level's masses.
class MultisetModel {
 public:
  explicit MultisetModel(const PricingProblem& p) : p_(p), n_(p.n) {}

  int64_t candidates() const { return p_.m; }
  int64_t response(int64_t c) const { return c; }
  static constexpr bool repeats = true;
  void reserve(int64_t depth) {
    const size_t cells = size_t(depth + 1) * n_;
    best_.assign(cells, std::numeric_limits<int64_t>::max());
    count_.assign(cells, 0);
    below_.assign(cells, 0.0);
    tied_.assign(cells, 0.0);
  }

  double value(int64_t depth) const {
    double total = 0.0;
    const size_t o = size_t(depth) * n_;
    for (int64_t i = 0; i < n_; ++i) total += below_[o + i] + share(count_[o + i]) * tied_[o + i];
    return total;
  }

  // gains[c * copies + j]: the gain of the (j+1)-th copy of R[c] added to S alone.
  double gains(int64_t depth, const std::vector<int64_t>& R, int64_t copies, std::vector<double>& gains,
               std::vector<double>& /*scratch*/) const {
    const size_t o = size_t(depth) * n_;
    gains.assign(R.size() * copies, 0.0);
    for (size_t c = 0; c < R.size(); ++c) {
      const int64_t z = R[c];
      double* g = &gains[c * copies];
      for (int64_t i = 0; i < n_; ++i) {
        const int64_t l = p_.level[z * n_ + i], b = best_[o + i];
        if (l > b) continue;
        const int64_t c0 = count_[o + i];
        const double cur = below_[o + i] + share(c0) * tied_[o + i];
        double previous = cur;
        for (int64_t j = 1; j <= copies; ++j) {
          const double now = l < b ? p_.below[z * n_ + i] + share(j) * p_.tied[z * n_ + i]
                                   : below_[o + i] + share(c0 + j) * tied_[o + i];
          g[j - 1] += now - previous;
          previous = now;
        }
      }
    }
    return std::numeric_limits<double>::infinity();
  }

  void add(int64_t depth, int64_t z) {
    const size_t o = size_t(depth) * n_, t = o + n_;
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t l = p_.level[z * n_ + i];
      if (l < best_[o + i]) {
        best_[t + i] = l, count_[t + i] = 1, below_[t + i] = p_.below[z * n_ + i], tied_[t + i] = p_.tied[z * n_ + i];
      } else {
        best_[t + i] = best_[o + i], below_[t + i] = below_[o + i], tied_[t + i] = tied_[o + i];
        count_[t + i] = count_[o + i] + (l == best_[o + i]);
      }
    }
  }

 private:
  const PricingProblem& p_;
  int64_t n_;
  std::vector<int64_t> best_, count_;
  std::vector<double> below_, tied_;
};

// Copies of one candidate whose gains are computed exactly; further copies are
// bounded by the last one computed (gains never grow with the copy number).
inline constexpr int64_t kExplicitCopies = 16;

template <class Model>
class Search {
 public:
  Search(Model& model, int64_t size, double target, int64_t max_nodes, double seconds)
      : model_(model), size_(size), target_(target), max_nodes_(max_nodes),
        deadline_(std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                          std::chrono::duration<double>(seconds))) {
    model_.reserve(size);
  }

  void offer(const std::vector<int64_t>& committee, double value) {
    if (value > incumbent_) incumbent_ = value, best_ = committee;
  }

  void run() {
    std::vector<int64_t> R(model_.candidates());
    std::iota(R.begin(), R.end(), 0);
    visit(0, size_, R, 0.0);
  }

  double incumbent() const { return incumbent_; }
  const std::vector<int64_t>& best() const { return best_; }  // model candidate indices
  double bound() const { return std::max({incumbent_, pruned_, open_}); }
  bool finished() const { return !stopped_; }
  int64_t nodes() const { return nodes_; }

 private:
  double threshold() const { return std::max(incumbent_, target_); }

  bool out_of_budget() {
    if (nodes_ >= max_nodes_) return true;
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

  void visit(int64_t depth, int64_t r, const std::vector<int64_t>& R, double value) {
    ++nodes_;
    const int64_t copies = Model::repeats ? std::min(r, kExplicitCopies) : 1;
    std::vector<double> gains, scratch, top;
    const double cap = model_.gains(depth, R, copies, gains, scratch);
    // candidates in decreasing order of the first copy's gain (ties: lower index first)
    std::vector<int64_t> order(R.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return gains[a * copies] > gains[b * copies]; });
    std::vector<int64_t> sorted(R.size());
    std::vector<double> sorted_gains(gains.size());
    for (size_t c = 0; c < order.size(); ++c) {
      sorted[c] = R[order[c]];
      std::copy_n(&gains[order[c] * copies], copies, &sorted_gains[c * copies]);
    }
    suffix_bounds(r, copies, sorted_gains, top);
    if (sorted.empty() || value + std::min(top[0], cap) <= threshold()) {
      if (!sorted.empty()) prune(value + std::min(top[0], cap));
      return;
    }
    if (r == 1) {  // the best child is the first: its value is exact
      chosen_.push_back(sorted[0]);
      offer_model(value + sorted_gains[0]);
      chosen_.pop_back();
      if (sorted.size() > 1) prune(value + sorted_gains[copies]);
      return;
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

  void offer_model(double value) {
    if (value <= incumbent_) return;
    incumbent_ = value;
    best_.clear();
    for (int64_t c : chosen_) best_.push_back(model_.response(c));
  }

  Model& model_;
  int64_t size_;
  double target_;
  int64_t max_nodes_;
  std::chrono::steady_clock::time_point deadline_;
  double incumbent_ = -std::numeric_limits<double>::infinity();
  double pruned_ = -std::numeric_limits<double>::infinity();
  double open_ = -std::numeric_limits<double>::infinity();
  bool stopped_ = false;
  int64_t nodes_ = 0;
  std::vector<int64_t> chosen_, best_;
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
// sets). `start`: a committee whose value seeds the incumbent (may be empty).
// Nodes whose bound is <= target are pruned as well: with target below the optimum
// the search is exact; otherwise it may stop at proving max <= target.
inline PricingOutcome price_committee(const PricingProblem& p, const std::vector<int64_t>& start, double target,
                                      int64_t max_nodes, double seconds) {
  using namespace pricing_detail;
  if (p.n < 0 || p.m < 1 || p.size < 1 || (!p.multiset && p.size > p.m))
    throw std::invalid_argument("pricing: bad problem dimensions");
  PricingOutcome out;
  auto finish = [&](auto& search) {
    if (!start.empty()) {
      std::vector<int64_t> sorted = start;
      std::sort(sorted.begin(), sorted.end());
      search.offer(sorted, committee_value(p, sorted));
    }
    search.run();
    out.committee = search.best();
    std::sort(out.committee.begin(), out.committee.end());
    out.value = committee_value(p, out.committee);
    out.bound = std::max(search.bound(), out.value);
    out.finished = search.finished();
    out.nodes = search.nodes();
  };
  if (p.multiset) {
    MultisetModel model(p);
    Search<MultisetModel> search(model, p.size, target, max_nodes, seconds);
    finish(search);
  } else {
    SetModel model(p, undominated(p));
    Search<SetModel> search(model, p.size, target, max_nodes, seconds);
    finish(search);
  }
  return out;
}

}  // namespace ualign
