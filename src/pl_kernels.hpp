// Exact kernels for a mixture of Plackett-Luce types.
//
// Type i has rewards x_i, kept as given: every kernel uses differences of two
// rewards (each rounded once) or sums of rates relative to a member, so the
// rates exp(x - anchor) never overflow, and rewards far below their row's
// maximum keep their digits (a shift by the maximum would round 0 and log 2
// under a maximum of 1e16 to the same value). A multiset S has weight
// W_i(S) = sum_{z in S} e_i(z) and P_i[S > T] = W_i(S) / (W_i(S) + W_i(T)).
//
// Closed forms: anything against a multiset is a ratio (evaluated as a logistic
// of log-weights, so it cannot underflow to 0/0). Products go through
// exponential clocks: give every member z of a multiset a clock T_z ~ Exp(e(z));
// the multiset "fires" at T_X = min of its clocks, and P[A > B] = P[T_A < T_B].
// With F_X(t) = P[T_X > t] ((1 - D_pi(t))^k for pi^(k), D_pi(t) = sum_y pi_y
// (1 - e^{-e(y) t}) the chance that one draw has fired; exp(-W(S) t) for S) and
// f_X = -F_X', integrating 1/x = int_0^inf e^{-x t} dt by parts gives
//
//   P_i[y > X]  = F_X(inf) + int_0^inf f_X(t) (1 - e^{-e(y) t}) dt
//   P_i[A > B]  = F_A(0) F_B(0) - int_0^inf f_A(t) (F_B(0) - F_B(t)) dt     (A, B nonempty)
//
// whose integrands vanish like t at t = 0 (the left tail is second order) and
// whose measure f_X does not depend on y, so every response shares the nodes.
// D, 1 - e^{-e(y) t} and F_B(0) - F_B(t) are all formed without cancellation
// (expm1, log1p), so F(0) = 1 exactly and nothing degrades with k: every k in
// int64 is supported (at k = 2^62 the draws' clock fires at t ~ 1e-19).
//
// Quadrature: the trapezoidal rule in s = log t with step h = 0.25. After
// t = e^s every integrand is analytic and bounded in the strip |Im s| < pi/2
// (|e^{-a e^{i tau}}| <= 1 there), so the rule converges like exp(-2 pi d / h):
// below 1e-15 at h = 0.25. Against 30-digit mpmath (tests/pl_reference.py)
// utilities and product against product are within 1.5e-15 for rewards over
// [-20, 20] and k <= 64, and within 1e-12 for k up to 2^62 or rewards 1e300
// apart. The tails are cut at an absolute 1e-17 (the gradient's at 1e-17 / k),
// so values below ~1e-17 carry no relative accuracy.
// Nodes are needed only where the measure f_X lives: around s = -log e(z) for
// the members z of X, from a rigorous left cut (tail <= r_A r_B t0^2 / 2 <= 1e-17)
// to the first node where F_X <= 1e-17 (found by bisection). Members whose
// log-rates are more than ~47 apart get separate node clusters, so the number
// of nodes Q stays bounded by the number of members even for absurd spreads,
// and each cluster evaluates rates relative to its own anchor (no underflow).
// Within a cluster consecutive nodes multiply the rates by e^h (one exp per
// response and node instead of two), re-anchored exactly every 16 nodes. Node
// positions are offsets from the cluster's anchor, so the only loss with very
// wide clusters is ~(cluster span in log-rate) * eps: immaterial below ~1e3.
//
// Cost: utilities O(n * m * Q) with Q ~ (spread of log-rates + 25) / h, e.g.
// ~100 nodes for standard normal rewards, ~235 for rewards spread over [-20, 20].
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "operand.hpp"
#include "parallel.hpp"
#include "pl_simd.hpp"
#include "ties.hpp"

namespace ualign {
namespace pl {

// Trapezoidal step in s = log t, and the tolerance of each truncated tail.
inline constexpr double kStep = 0.25;
inline constexpr double kTail = 1e-17;
// Beyond this many units of s past a member's -log rate its clock has fired:
// exp(-e^4) ~ 2e-24, whatever k (the draws' measure there is at most
// k pi (1 - pi)^(k-1) a e^{-a} <= a e^{-a}, whose tail integral is e^{-a}).
inline constexpr double kRightReach = 4.0;
// Arguments of exp are capped here: exp(-e^700) is 0 anyway.
inline constexpr double kMaxArg = 700.0;
// Consecutive nodes advance the rates by multiplication; every this many, exactly.
inline constexpr int64_t kReanchor = 16;
// Shifted rewards (PLStore::shifted_rewards) are kept above this.
inline constexpr double kLowestReward = -std::numeric_limits<double>::max();
// Value of padding responses: their clocks never fire.
inline constexpr double kPadding = -1e300;

inline int64_t pad4(int64_t m) { return (m + 3) / 4 * 4; }

// log(sum exp(v)) of a nonempty list; -inf and +inf stay as they are.
inline double log_sum_exp(const double* v, int64_t count) {
  double top = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < count; ++j) top = std::max(top, v[j]);
  if (!std::isfinite(top)) return top;
  double sum = 0.0;
  for (int64_t j = 0; j < count; ++j) sum += std::exp(v[j] - top);
  return top + std::log(sum);
}

// log W(S) of a nonempty multiset as base + offset: base is the reward of its
// best member, offset = log sum_{z in S} exp(r(z) - base) in [0, log |S|].
// Rewards are kept as given, and the rounded sum base + offset would lose the
// offset next to a reward of 1e16; differences are taken base to base first.
struct LogWeight {
  double base = 0.0, offset = 0.0;
  double value() const { return base + offset; }  // (for placing nodes only)
  double minus(double anchor) const { return (base - anchor) + offset; }
};

// 1 / (1 + e^gap): P[a > b] when log W(b) - log W(a) = gap.
inline double logistic(double gap) { return 1.0 / (1.0 + std::exp(std::min(gap, 709.0))); }

// P[a > b] for two nonempty multisets given their log-weights.
inline double logistic(const LogWeight& a, const LogWeight& b) {
  return logistic((b.base - a.base) + (b.offset - a.offset));
}

// A k-sample policy enters through D(t) = sum_y pi_y (1 - e^{-e(y) t}), the
// chance that one draw has fired by t; its survival is (1 - D)^k. D is summed
// to full relative precision (expm1), so 1 - D is exactly 1 at t = 0 whatever
// the rounding of sum pi: phi(0)^k = (sum pi)^k would be off by k * m * eps, the
// whole answer once k ~ 1e13. (For sum pi = 1 this is the Laplace form of the
// k-sample law; a policy accepted with sum pi = 1 + delta reads as mass -delta
// on a draw that never fires, which moves results by O(delta), not O(k delta).)
inline double survival_pow(double D, int64_t k) {
  if (D < 0.5) return std::exp(static_cast<double>(k) * std::log1p(-D));
  return ipow(1.0 - D, k);  // 1 - D is exact here
}

// 1 - (1 - D)^k without cancellation.
inline double fired_pow(double D, int64_t k) {
  if (D < 0.5) return -std::expm1(static_cast<double>(k) * std::log1p(-D));
  return 1.0 - ipow(1.0 - D, k);
}

// Work items per type: (type, block of quadrature nodes). Enough of them that
// sum_over_voters forms several lanes when there are few but costly types; a
// function of (n, m) only, so the partition never depends on the thread count.
inline int64_t blocks_per_type(int64_t n, int64_t m) {
  if (n * m < 4096) return 1;
  return std::clamp<int64_t>((16 * 1024 + n - 1) / n, 1, 32);
}

// ---------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------
struct PLView {
  const double* x;        // n x m rewards, as given
  const double* top;      // n row maxima
  const double* weights;  // normalised
  int64_t n, m;
  const double* row(int64_t i) const { return x + i * m; }
};

// Rewards are stored as given, not shifted by the row maximum: r - max(r) rounds
// to a multiple of ulp(max(r) - r), so rewards 0 and log 2 under a maximum of 1e16
// would both become -1e16 and tie. The kernels use only differences of two
// rewards (each rounded once) and sums of rates relative to a member, so
// exp never overflows all the same.
class PLStore {
 public:
  // `rewards` must be finite (checked by the caller).
  PLStore(const double* rewards, int64_t n, int64_t m) : n_(n), m_(m) {
    if (n < 1) throw std::invalid_argument("rewards: need at least one type");
    if (m < 1) throw std::invalid_argument("rewards: need at least one response");
    x_.assign(rewards, rewards + n * m);
    top_.resize(static_cast<size_t>(n));
    weights_.assign(static_cast<size_t>(n), 1.0 / static_cast<double>(n));
    for (int64_t i = 0; i < n; ++i)
      top_[static_cast<size_t>(i)] = *std::max_element(rewards + i * m, rewards + (i + 1) * m);
  }

  void set_weights(const double* weights) {
    if (!(*std::max_element(weights, weights + n_) > 0.0)) throw std::invalid_argument("weights: must not all be zero");
    normalise_weights(weights, n_, weights_.data());
  }

  // Normalised weights kept bit for bit (how pickled models come back).
  void restore_weights(const double* weights) { std::copy(weights, weights + n_, weights_.begin()); }

  PLView view() const { return PLView{x_.data(), top_.data(), weights_.data(), n_, m_}; }
  int64_t n() const { return n_; }
  int64_t m() const { return m_; }
  const std::vector<double>& rewards() const { return x_; }
  const std::vector<double>& weights() const { return weights_; }

  // Rewards shifted so that each row's maximum is 0 (for display and sampling;
  // r - max(r) overflows to -inf only in rows spanning more than the float64
  // range, whose bottom members are clamped: they never win there anyway).
  void shifted_rewards(double* out) const {
    for (int64_t i = 0; i < n_; ++i)
      for (int64_t y = 0; y < m_; ++y)
        out[i * m_ + y] = std::max(x_[static_cast<size_t>(i * m_ + y)] - top_[static_cast<size_t>(i)], kLowestReward);
  }

 private:
  int64_t n_, m_;
  std::vector<double> x_, top_;
  std::vector<double> weights_;
};

// ---------------------------------------------------------------------------
// Operands, prepared once per kernel call (they do not depend on the type)
// ---------------------------------------------------------------------------
struct Prepared {
  int64_t m = 0, m4 = 0;
  // product terms with positive probability and mass
  std::vector<double> prob;  // p_t
  std::vector<int64_t> k;
  std::vector<double> pis;                        // terms x m4, zero padded
  std::vector<int64_t> support, support_offsets;  // members with pi > 0, per term
  std::vector<double> support_pi;
  // nonempty multisets with positive probability
  std::vector<int64_t> sets;  // indices into the operand's multisets
  std::vector<double> set_prob;
  double empty = 0.0;  // probability of the empty multiset
  double mass_products = 0.0, mass_sets = 0.0;
  int64_t k_max = 1;
  const Operand* op = nullptr;

  Prepared(const Operand& o, int64_t m_) : m(m_), m4(pad4(m_)), op(&o) {
    support_offsets.push_back(0);
    for (int64_t t = 0; t < o.n_products; ++t) {
      const double p = o.product_probs[t];
      const double* pi = o.policies + t * m;
      double s = 0.0;
      for (int64_t y = 0; y < m; ++y) s += pi[y];
      if (!(p > 0.0) || !(s > 0.0)) continue;
      prob.push_back(p);
      k.push_back(o.ks[t]);
      mass_products += p;  // survival 1 at t = 0 (see survival_pow)
      k_max = std::max(k_max, o.ks[t]);
      const size_t base = pis.size();
      pis.resize(base + static_cast<size_t>(m4), 0.0);
      for (int64_t y = 0; y < m; ++y) {
        pis[base + static_cast<size_t>(y)] = pi[y];
        if (pi[y] > 0.0) {
          support.push_back(y);
          support_pi.push_back(pi[y]);
        }
      }
      support_offsets.push_back(static_cast<int64_t>(support.size()));
    }
    for (int64_t s = 0; s < o.n_multisets; ++s) {
      const double p = o.multiset_probs[s];
      if (!(p > 0.0)) continue;
      if (o.offsets[s + 1] == o.offsets[s]) {
        empty += p;
      } else {
        sets.push_back(s);
        set_prob.push_back(p);
        mass_sets += p;
      }
    }
  }

  int64_t terms() const { return static_cast<int64_t>(prob.size()); }
  bool has_products() const { return !prob.empty(); }
  bool has_sets() const { return !sets.empty(); }
  const double* pi(int64_t t) const { return pis.data() + t * m4; }
  int64_t support_size() const { return static_cast<int64_t>(support.size()); }

  // log W_i(S) of every nonempty multiset for the type whose rewards are x.
  void log_weights(const double* x, std::vector<LogWeight>& out, std::vector<double>& scratch) const {
    out.resize(sets.size());
    for (size_t j = 0; j < sets.size(); ++j) {
      const int64_t s = sets[j];
      const int64_t begin = op->offsets[s], end = op->offsets[s + 1];
      double base = x[op->items[begin]];
      for (int64_t q = begin + 1; q < end; ++q) base = std::max(base, x[op->items[q]]);
      scratch.resize(static_cast<size_t>(end - begin));
      for (int64_t q = begin; q < end; ++q) scratch[static_cast<size_t>(q - begin)] = x[op->items[q]] - base;
      out[j] = LogWeight{base, log_sum_exp(scratch.data(), end - begin)};
    }
  }
};

// ---------------------------------------------------------------------------
// The node lattice of one integral on one type
// ---------------------------------------------------------------------------
struct Cluster {
  double anchor;  // log-rate of the cluster's top member; node s = -anchor + delta
  double delta0;  // delta of the first node
  int64_t first, count;
};

class Lattice {
 public:
  // `rates`: log-rates of the members carrying the measure (sorted here,
  // descending). `lo`: offset of the left cut from the top rate. `reach`: how
  // far left of a member its measure is still above the tolerance.
  void build(std::vector<double>& rates, double lo, double reach, double h) {
    h_ = h;
    clusters_.clear();
    total_ = 0;
    if (rates.empty()) return;
    std::sort(rates.begin(), rates.end(), std::greater<double>());
    const double gap = reach + kRightReach;
    const double top_rate = rates.front();
    size_t i = 0;
    while (i < rates.size()) {
      size_t j = i;
      while (j + 1 < rates.size() && rates[j] - rates[j + 1] <= gap) ++j;
      const double top = rates[i], bottom = rates[j];
      const double d0 = std::max(-reach, lo - (top_rate - top));
      const double d1 = (top - bottom) + kRightReach;
      if (d1 >= d0) {
        const int64_t count = static_cast<int64_t>(std::floor((d1 - d0) / h)) + 1;
        clusters_.push_back(Cluster{top, d0, total_, count});
        total_ += count;
      }
      i = j + 1;
    }
  }

  int64_t total() const { return total_; }
  int64_t cluster_of(int64_t j) const {
    const auto after = std::upper_bound(clusters_.begin(), clusters_.end(), j,
                                        [](int64_t node, const Cluster& c) { return node < c.first; });
    return static_cast<int64_t>(after - clusters_.begin()) - 1;
  }
  const Cluster& cluster(int64_t c) const { return clusters_[static_cast<size_t>(c)]; }
  double delta(int64_t c, int64_t j) const {
    const Cluster& cl = cluster(c);
    return cl.delta0 + static_cast<double>(j - cl.first) * h_;
  }

  // The number of nodes to use: up to and including the first node where
  // `done(anchor, delta)` holds (a monotone criterion), found by bisection.
  template <class Done>
  int64_t used(Done done) const {
    if (total_ == 0) return 0;
    auto at = [&](int64_t j) {
      const int64_t c = cluster_of(j);
      return done(cluster(c).anchor, delta(c, j));
    };
    if (!at(total_ - 1)) return total_;
    int64_t lo = -1, hi = total_ - 1;  // at(hi) holds
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (at(mid))
        hi = mid;
      else
        lo = mid;
    }
    return hi + 1;
  }

 private:
  double h_ = kStep;
  std::vector<Cluster> clusters_;
  int64_t total_ = 0;
};

// Left cut (offset from the top rate) for an integrand bounded by
// min(r_A, r_A r_B t) near 0, in the frame of the top rate.
inline double left_cut(double log_rA, double log_rB) {
  const double first = std::log(kTail) - log_rA;
  const double second = 0.5 * (std::log(2.0 * kTail) - log_rA - log_rB);
  return std::max(first, second);
}

// How far left of a member its measure stays above kTail when scaled by `scale`
// (k for k draws).
inline double left_reach(double scale) { return std::log(std::max(scale, 1.0) / kTail) + 1.0; }

// Per-thread scratch of one integral: rates a, survival factors E = e^{-a} and
// G = 1 - E of all responses at the current node, relative to the current
// cluster's anchor.
class Sweep {
 public:
  explicit Sweep(int64_t m4)
      : m4_(m4),
        d_(static_cast<size_t>(m4)),
        a_(static_cast<size_t>(m4)),
        E_(static_cast<size_t>(m4)),
        G_(static_cast<size_t>(m4)) {}

  void reset() {
    cluster_ = -1;
    last_ = -2;
  }

  // Moves to node j, filling a, E and G; sums for `pi`.
  void at(const Lattice& lat, const double* xpad, int64_t j, double ratio, const double* pi, double* sums) {
    const int64_t c = lat.cluster_of(j);
    if (c != cluster_) {
      const double anchor = lat.cluster(c).anchor;
      for (int64_t y = 0; y < m4_; ++y) d_[static_cast<size_t>(y)] = xpad[y] - anchor;
      cluster_ = c;
      exact_ = -kReanchor;
    }
    if (j == last_ + 1 && j - exact_ < kReanchor) {
      advance_fired_pass(ratio, pi, m4_, a_.data(), E_.data(), G_.data(), sums);
    } else {
      exp_fired_pass(d_.data(), lat.delta(c, j), pi, m4_, a_.data(), E_.data(), G_.data(), sums);
      exact_ = j;
    }
    last_ = j;
  }

  const double* a() const { return a_.data(); }
  const double* E() const { return E_.data(); }
  const double* G() const { return G_.data(); }

 private:
  int64_t m4_;
  std::vector<double> d_, a_, E_, G_;
  int64_t cluster_ = -1, last_ = -2, exact_ = 0;
};

// The product terms of `P` at one node, on compact supports (used by the
// bisection for the last node): D_t (the chance that one draw of term t has
// fired) for every term.
class SupportEval {
 public:
  void setup(const Prepared& P, const double* x) {
    const int64_t terms = P.terms();
    offsets_.assign(1, 0);
    for (int64_t t = 0; t < terms; ++t) {
      const int64_t b = P.support_offsets[static_cast<size_t>(t)], e = P.support_offsets[static_cast<size_t>(t) + 1];
      offsets_.push_back(offsets_.back() + pad4(e - b));
    }
    const size_t size = static_cast<size_t>(offsets_.back());
    xs_.assign(size, kPadding);
    ps_.assign(size, 0.0);
    d_.resize(size);
    a_.resize(size);
    E_.resize(size);
    for (int64_t t = 0; t < terms; ++t) {
      const int64_t b = P.support_offsets[static_cast<size_t>(t)], e = P.support_offsets[static_cast<size_t>(t) + 1];
      const int64_t o = offsets_[static_cast<size_t>(t)];
      for (int64_t j = b; j < e; ++j) {
        xs_[static_cast<size_t>(o + j - b)] = x[P.support[static_cast<size_t>(j)]];
        ps_[static_cast<size_t>(o + j - b)] = P.support_pi[static_cast<size_t>(j)];
      }
    }
  }

  // D_t at s = -anchor + delta for every term.
  void fired(double anchor, double delta, std::vector<double>& out) {
    const size_t terms = offsets_.size() - 1;
    out.resize(terms);
    for (size_t t = 0; t < terms; ++t) {
      const int64_t o = offsets_[t], len4 = offsets_[t + 1] - o;
      for (int64_t j = o; j < o + len4; ++j) d_[static_cast<size_t>(j)] = xs_[static_cast<size_t>(j)] - anchor;
      double sums[2];
      exp_pass(d_.data() + o, delta, ps_.data() + o, len4, a_.data() + o, E_.data() + o, sums);
      out[t] = sums[0];
    }
  }

  // sum_t p_t (1 - D_t)^{k_t}: the survival of the product terms at the node.
  double survival(const Prepared& P, double anchor, double delta) {
    fired(anchor, delta, D_);
    double F = 0.0;
    for (int64_t t = 0; t < P.terms(); ++t)
      F += P.prob[static_cast<size_t>(t)] * survival_pow(D_[static_cast<size_t>(t)], P.k[static_cast<size_t>(t)]);
    return F;
  }

 private:
  std::vector<int64_t> offsets_;
  std::vector<double> xs_, ps_, d_, a_, E_, D_;
};

// Copies row x into a padded buffer.
inline void pad_row(const double* x, int64_t m, int64_t m4, std::vector<double>& out) {
  out.resize(static_cast<size_t>(m4));
  std::copy(x, x + m, out.begin());
  std::fill(out.begin() + m, out.end(), kPadding);
}

// sum_j c_j exp(v_j - top) for the product terms' supports, with c = p k pi.
inline double product_rate(const Prepared& P, const double* x, double top) {
  double r = 0.0;
  for (int64_t t = 0; t < P.terms(); ++t) {
    const double c = P.prob[static_cast<size_t>(t)] * static_cast<double>(P.k[static_cast<size_t>(t)]);
    double s = 0.0;
    for (int64_t j = P.support_offsets[static_cast<size_t>(t)]; j < P.support_offsets[static_cast<size_t>(t) + 1]; ++j)
      s += P.support_pi[static_cast<size_t>(j)] * std::exp(std::min(x[P.support[static_cast<size_t>(j)]] - top, 709.0));
    r += c * s;
  }
  return r;
}

inline double safe_log(double v) { return v > 0.0 ? std::log(v) : std::log(std::numeric_limits<double>::min()); }

// sum_over_voters for the kernels below, with no exception leaving the OpenMP
// region: the first one thrown by a worker (or while building one, e.g.
// std::bad_alloc) is kept, every later work item is skipped, and it is rethrown
// on the calling thread once the region has ended.
template <class MakeWorker>
void sum_over_types(int64_t count, int64_t width, double* out, MakeWorker make_worker) {
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  std::mutex lock;
  auto attempt = [&](auto&& step) {
    try {
      step();
    } catch (...) {
      const std::lock_guard<std::mutex> hold(lock);
      if (!error) error = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
    }
  };
  sum_over_voters(count, width, out, [&]() {
    std::optional<decltype(make_worker())> worker;
    attempt([&] { worker.emplace(make_worker()); });
    return [&failed, &attempt, worker = std::move(worker)](int64_t v, double* acc) mutable {
      if (worker && !failed.load(std::memory_order_relaxed)) attempt([&] { (*worker)(v, acc); });
    };
  });
  if (error) std::rethrow_exception(error);
}

// ---------------------------------------------------------------------------
// beats: out[y] = sum_i w_i P_i[y > X]
// ---------------------------------------------------------------------------
// P_i[y > X] of single types, block by block: block b of `blocks` covers the
// nodes [used * b / blocks, used * (b + 1) / blocks) of the type's lattice (block 0
// also the closed-form multiset terms), so P_i[y > X] is the sum of its blocks. One
// per thread: it owns the scratch and keeps the last type's lattice, so a type's
// blocks taken in a row set it up once. `P` must outlive it.
class TypeBeats {
 public:
  TypeBeats(const PLView& data, const Prepared& P, int64_t blocks)
      : data_(&data),
        P_(&P),
        blocks_(blocks),
        m4_(pad4(data.m)),
        ratio_(std::exp(kStep)),
        h_(std::log(ratio_)),
        reach_(left_reach(static_cast<double>(P.k_max))),
        local_(static_cast<size_t>(m4_)),
        rel_(static_cast<size_t>(m4_)),
        sweep_(m4_) {}

  // Block b's share of P_i[y > X] for y < m (the padding after it is scratch).
  const double* block(int64_t i, int64_t b) {
    const PLView& data = *data_;
    const Prepared& P = *P_;
    const int64_t m = data.m;
    if (type_ != i) {
      type_ = i;
      pad_row(data.row(i), m, m4_, xpad_);
      used_ = 0;
      if (P.has_products()) {
        rates_.clear();
        for (int64_t y : P.support) rates_.push_back(xpad_[static_cast<size_t>(y)]);
        const double top = *std::max_element(rates_.begin(), rates_.end());
        const double rA = product_rate(P, xpad_.data(), top);
        // the responses' largest rate, in the frame of the top rate of X
        lattice_.build(rates_, left_cut(safe_log(rA), data.top[i] - top), reach_, h_);
        support_.setup(P, xpad_.data());
        used_ =
            lattice_.used([&](double anchor, double delta) { return support_.survival(P, anchor, delta) <= kTail; });
      }
    }
    std::fill(local_.begin(), local_.end(), 0.0);
    if (b == 0) {
      // P[y > S] = e(y) / (e(y) + W(S)) = 1 / (1 + exp(offset - (r(y) - base)));
      // everything beats the empty multiset.
      P.log_weights(xpad_.data(), lw_, scratch_);
      for (size_t j = 0; j < lw_.size(); ++j) {
        for (int64_t y = 0; y < m4_; ++y) rel_[static_cast<size_t>(y)] = xpad_[static_cast<size_t>(y)] - lw_[j].base;
        add_logistic(P.set_prob[j], rel_.data(), lw_[j].offset, m4_, local_.data());
      }
      for (int64_t y = 0; y < m; ++y) local_[static_cast<size_t>(y)] += P.empty;
    }
    if (P.has_products()) {
      const int64_t j0 = used_ * b / blocks_, j1 = used_ * (b + 1) / blocks_;
      sweep_.reset();
      sums_.resize(2);
      for (int64_t j = j0; j < j1; ++j) {
        sweep_.at(lattice_, xpad_.data(), j, ratio_, P.pi(0), sums_.data());
        double density = 0.0;  // t f_X(t): the measure in s
        for (int64_t t = 0; t < P.terms(); ++t) {
          double sums[2] = {sums_[0], sums_[1]};
          if (t > 0) dot_pass(P.pi(t), sweep_.a(), sweep_.E(), m4_, sums);
          const int64_t k = P.k[static_cast<size_t>(t)];
          density += P.prob[static_cast<size_t>(t)] * static_cast<double>(k) * survival_pow(sums[0], k - 1) * sums[1];
        }
        add_scaled(h_ * density, sweep_.G(), m4_, local_.data());
      }
    }
    return local_.data();
  }

 private:
  const PLView* data_;
  const Prepared* P_;
  int64_t blocks_, m4_;
  double ratio_, h_, reach_;
  int64_t type_ = -1, used_ = 0;
  std::vector<double> xpad_, local_, scratch_, sums_, rates_, rel_;
  std::vector<LogWeight> lw_;
  Lattice lattice_;
  Sweep sweep_;
  SupportEval support_;
};

// Work items are (type, block): enough of them for several lanes when there are
// few but costly types.
inline void beat_probabilities_kernel(const PLView& data, const Operand& op, double* out) {
  const int64_t m = data.m;
  const Prepared P(op, m);
  const int64_t B = P.has_products() ? blocks_per_type(data.n, m) : 1;
  sum_over_types(data.n * B, m, out, [&]() {
    return [&, beats = TypeBeats(data, P, B)](int64_t v, double* acc) mutable {
      const int64_t i = v / B;
      const double wi = data.weights[i];
      if (wi == 0.0) return;
      const double* local = beats.block(i, v % B);
      for (int64_t y = 0; y < m; ++y) acc[y] += wi * local[y];
    };
  });
}

// ---------------------------------------------------------------------------
// win_rate: sum_i w_i P_i[A > B]
// ---------------------------------------------------------------------------
inline double win_rate_kernel(const PLView& data, const Operand& op_a, const Operand& op_b) {
  const int64_t m = data.m, m4 = pad4(m);
  const Prepared A(op_a, m), Bop(op_b, m);
  const bool integral =
      (A.has_sets() && Bop.has_products()) || (A.has_products() && (Bop.has_products() || Bop.has_sets()));
  const int64_t blocks = integral ? blocks_per_type(data.n, m) : 1;
  const double ratio = std::exp(kStep), h = std::log(ratio);
  const double reach = left_reach(static_cast<double>(A.k_max));
  // All product terms of both sides share the sweep: A's first, then B's.
  std::vector<const double*> pis;
  for (int64_t t = 0; t < A.terms(); ++t) pis.push_back(A.pi(t));
  for (int64_t t = 0; t < Bop.terms(); ++t) pis.push_back(Bop.pi(t));
  // B's survival at t = 0, of its product terms and of its multisets
  const double F_BP0 = Bop.mass_products, F_BM0 = Bop.mass_sets;

  double out = 0.0;
  sum_over_types(data.n * blocks, 1, &out, [&]() {
    struct State {
      int64_t type = -1, used = 0;
      std::vector<double> xpad, scratch, rates, sums;
      std::vector<LogWeight> lwA, lwB;
      Lattice lattice;
      Sweep sweep;
      SupportEval support;
      explicit State(int64_t m4_) : sweep(m4_) {}
    };
    return [&, st = State(m4)](int64_t v, double* acc) mutable {
      const int64_t i = v / blocks, b = v % blocks;
      const double wi = data.weights[i];
      if (wi == 0.0) return;
      if (st.type != i) {
        st.type = i;
        pad_row(data.row(i), m, m4, st.xpad);
        A.log_weights(st.xpad.data(), st.lwA, st.scratch);
        Bop.log_weights(st.xpad.data(), st.lwB, st.scratch);
        st.used = 0;
        if (integral) {
          st.rates.clear();
          for (int64_t y : A.support) st.rates.push_back(st.xpad[static_cast<size_t>(y)]);
          for (const LogWeight& l : st.lwA) st.rates.push_back(l.value());
          const double top = *std::max_element(st.rates.begin(), st.rates.end());
          double rA = product_rate(A, st.xpad.data(), top);
          for (size_t j = 0; j < st.lwA.size(); ++j)
            rA += A.set_prob[j] * std::exp(std::min(st.lwA[j].minus(top), 709.0));
          // log of B's rate at 0 in the same frame (may be huge: log-sum-exp)
          st.scratch.clear();
          for (int64_t t = 0; t < Bop.terms(); ++t) {
            const double c =
                std::log(Bop.prob[static_cast<size_t>(t)] * static_cast<double>(Bop.k[static_cast<size_t>(t)]));
            for (int64_t j = Bop.support_offsets[static_cast<size_t>(t)];
                 j < Bop.support_offsets[static_cast<size_t>(t) + 1]; ++j)
              st.scratch.push_back(c + std::log(Bop.support_pi[static_cast<size_t>(j)]) +
                                   (st.xpad[static_cast<size_t>(Bop.support[static_cast<size_t>(j)])] - top));
          }
          for (size_t j = 0; j < st.lwB.size(); ++j)
            st.scratch.push_back(std::log(Bop.set_prob[j]) + st.lwB[j].minus(top));
          const double log_rB = log_sum_exp(st.scratch.data(), static_cast<int64_t>(st.scratch.size()));
          st.lattice.build(st.rates, left_cut(safe_log(rA), log_rB), reach, h);
          st.support.setup(A, st.xpad.data());
          st.used = st.lattice.used([&](double anchor, double delta) {
            double F = A.has_products() ? st.support.survival(A, anchor, delta) : 0.0;
            for (size_t j = 0; j < st.lwA.size(); ++j)
              F += A.set_prob[j] * std::exp(-std::exp(std::min(st.lwA[j].minus(anchor) + delta, kMaxArg)));
            return F <= kTail;
          });
        }
      }
      double value = 0.0;
      if (b == 0) {
        const double mass_A = A.mass_products + A.mass_sets;
        value += 0.5 * A.empty * Bop.empty + Bop.empty * mass_A;
        for (size_t s = 0; s < st.lwA.size(); ++s) {
          double row = 0.0;
          for (size_t t = 0; t < st.lwB.size(); ++t) row += Bop.set_prob[t] * logistic(st.lwA[s], st.lwB[t]);
          value += A.set_prob[s] * row;
        }
        if (integral) value += A.mass_sets * F_BP0 + A.mass_products * (F_BP0 + F_BM0);
      }
      if (integral) {
        const int64_t j0 = st.used * b / blocks, j1 = st.used * (b + 1) / blocks;
        const bool products = !pis.empty();
        st.sweep.reset();
        st.sums.resize(2);
        double integral_sum = 0.0;
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t c = st.lattice.cluster_of(j);
          const double anchor = st.lattice.cluster(c).anchor, delta = st.lattice.delta(c, j);
          double fA = 0.0, fA_sets = 0.0, dF_BP = 0.0, dF_BM = 0.0;
          if (products) {
            st.sweep.at(st.lattice, st.xpad.data(), j, ratio, pis[0], st.sums.data());
            for (size_t t = 0; t < pis.size(); ++t) {
              double sums[2] = {st.sums[0], st.sums[1]};
              if (t > 0) dot_pass(pis[t], st.sweep.a(), st.sweep.E(), m4, sums);
              if (static_cast<int64_t>(t) < A.terms()) {
                const int64_t k = A.k[t];
                fA += A.prob[t] * static_cast<double>(k) * survival_pow(sums[0], k - 1) * sums[1];
              } else {
                const size_t u = t - static_cast<size_t>(A.terms());
                dF_BP += Bop.prob[u] * fired_pow(sums[0], Bop.k[u]);
              }
            }
          }
          for (size_t s = 0; s < st.lwA.size(); ++s) {
            const double a = std::exp(std::min(st.lwA[s].minus(anchor) + delta, kMaxArg));
            fA_sets += A.set_prob[s] * a * std::exp(-a);
          }
          for (size_t t = 0; t < st.lwB.size(); ++t) {
            const double a = std::exp(std::min(st.lwB[t].minus(anchor) + delta, kMaxArg));
            dF_BM += Bop.set_prob[t] * -std::expm1(-a);
          }
          integral_sum += fA_sets * dF_BP + fA * (dF_BP + dF_BM);
        }
        value -= h * integral_sum;
      }
      acc[0] += wi * value;
    };
  });
  return out;
}

// ---------------------------------------------------------------------------
// utilities and their vector-Jacobian products in one pass, for n_q rows q_r of
// q (row-major n_q x m): out[0..m) = u_y = sum_i w_i P_i[y > pi^(k)], then
// out[m + r m + z] = g_rz with
//   g_rz = k sum_y q_ry P[y > {z} + pi^(k-1)]
// (the partial derivatives of the degree-k polynomial u_y(pi) when sum pi = 1,
// so the gradient along every direction that keeps sum pi = 1):
//   d u_y / d pi_z = k int e(y) e^{-e(y) t} e^{-e(z) t} phi^{k-1} dt, so
//   g_z = k int e^{-e(z) t} [e(z) phi^{k-1} + (k-1) phi^{k-2} psi] D_q(t) dt,
//   phi = 1 - D, D_q(t) = sum_y q_y (1 - e^{-e(y) t})  (again by parts: second-order left tail).
// The sweep over the nodes (an exp per response and node) is shared by all rows,
// so the rows of the Jacobian (q_r = e_y) cost one pass, not one each.
// ---------------------------------------------------------------------------
inline void utilities_vjp_kernel(const PLView& data, const double* pi, const double* q, int64_t n_q, int64_t k,
                                 double* out) {
  const int64_t m = data.m, m4 = pad4(m);
  std::vector<double> pip(static_cast<size_t>(m4), 0.0), qp(static_cast<size_t>(n_q * m4), 0.0);
  std::copy(pi, pi + m, pip.begin());
  for (int64_t r = 0; r < n_q; ++r) std::copy(q + r * m, q + (r + 1) * m, qp.begin() + r * m4);
  // The policy as a one-term product operand (for the support evaluation).
  const double prob = 1.0;
  Operand op;
  op.m = m;
  op.n_products = 1;
  op.policies = pi;
  op.product_probs = &prob;
  op.ks = &k;
  const Prepared P(op, m);
  const int64_t B = blocks_per_type(data.n, m);
  const double ratio = std::exp(kStep), h = std::log(ratio);
  const double kd = static_cast<double>(k);
  // g_z = k P[...]: its tails are cut at kTail / k (relative to q), so that g
  // stays exact where the probabilities are ~1/k and g is O(1).
  const double reach = left_reach(kd * kd);

  sum_over_types(data.n * B, (1 + n_q) * m, out, [&]() {
    struct State {
      int64_t type = -1, used = 0;
      std::vector<double> xpad, lu, lg, fired, rates;
      double sums[2] = {0.0, 0.0};
      Lattice lattice;
      Sweep sweep;
      SupportEval support;
      State(int64_t m4_, int64_t n_q_)
          : lu(static_cast<size_t>(m4_)), lg(static_cast<size_t>(n_q_ * m4_)), sweep(m4_) {}
    };
    return [&, st = State(m4, n_q)](int64_t v, double* acc) mutable {
      const int64_t i = v / B, b = v % B;
      const double wi = data.weights[i];
      if (wi == 0.0) return;
      if (st.type != i) {
        st.type = i;
        pad_row(data.row(i), m, m4, st.xpad);
        st.used = 0;
        if (P.has_products()) {
          st.rates.assign(st.xpad.begin(), st.xpad.begin() + m);
          const double x_min = *std::min_element(st.rates.begin(), st.rates.end());
          const double top = data.top[i];
          double ebar = 0.0;
          for (int64_t y = 0; y < m; ++y)
            ebar += pi[y] * std::exp(std::max(st.xpad[static_cast<size_t>(y)] - top, -745.0));
          // frame: the top rate is the row max
          st.lattice.build(st.rates, left_cut(std::log(1.0 + (kd - 1.0) * ebar) + std::log(kd), 0.0), reach, h);
          st.support.setup(P, st.xpad.data());
          st.used = st.lattice.used([&](double anchor, double delta) {
            st.support.fired(anchor, delta, st.fired);
            const double slowest = std::exp(-std::exp(std::min(x_min - anchor + delta, kMaxArg)));
            return 2.0 * kd * kd * survival_pow(st.fired[0], k - 1) * slowest <= kTail;
          });
        }
      }
      std::fill(st.lu.begin(), st.lu.end(), 0.0);
      std::fill(st.lg.begin(), st.lg.end(), 0.0);
      const int64_t j0 = st.used * b / B, j1 = st.used * (b + 1) / B;
      st.sweep.reset();
      for (int64_t j = j0; j < j1; ++j) {
        st.sweep.at(st.lattice, st.xpad.data(), j, ratio, pip.data(), st.sums);
        const double fired = st.sums[0], psi_t = st.sums[1];
        const double phi_k1 = survival_pow(fired, k - 1);
        const double wu = h * kd * phi_k1 * psi_t;
        const double c1 = h * kd * phi_k1;
        const double c2 = k >= 2 ? h * kd * (kd - 1.0) * survival_pow(fired, k - 2) * psi_t : 0.0;
        add_scaled(wi * wu, st.sweep.G(), m4, st.lu.data());
        for (int64_t r = 0; r < n_q; ++r) {
          const double Dq = dot(qp.data() + r * m4, st.sweep.G(), m4);
          const double g2 = k >= 2 ? c2 * Dq : 0.0;
          add_gradient(wi * (c1 * Dq), wi * g2, st.sweep.a(), st.sweep.E(), m4, st.lg.data() + r * m4);
        }
      }
      for (int64_t y = 0; y < m; ++y) acc[y] += st.lu[static_cast<size_t>(y)];
      for (int64_t r = 0; r < n_q; ++r)
        for (int64_t y = 0; y < m; ++y) acc[m + r * m + y] += st.lg[static_cast<size_t>(r * m4 + y)];
    };
  });
}

// ---------------------------------------------------------------------------
// pairwise: out[y*m + z] = sum_i w_i e_i(y) / (e_i(y) + e_i(z))
// Types are taken in blocks; within a block every thread owns whole rows and
// adds its block sums with Neumaier compensation, so the order of every sum is
// fixed and the result does not depend on the thread count.
// ---------------------------------------------------------------------------
inline void pairwise_kernel(const PLView& data, double* out) {
  const int64_t n = data.n, m = data.m;
  constexpr int64_t kTypes = 256;
  std::vector<double> comp(static_cast<size_t>(m * m), 0.0);
  std::fill_n(out, m * m, 0.0);
  std::vector<double> eT(static_cast<size_t>(m * kTypes)), xT(static_cast<size_t>(m * kTypes)), w(kTypes);
  std::vector<double> row(static_cast<size_t>(pad4(m))), erow(static_cast<size_t>(pad4(m)));
  for (int64_t i0 = 0; i0 < n; i0 += kTypes) {
    const int64_t count = std::min(kTypes, n - i0);
    const int64_t count4 = pad4(count);
    bool safe = true;
    for (int64_t c = 0; c < count4; ++c) {
      if (c < count) {
        const double* x = data.row(i0 + c);
        for (int64_t y = 0; y < m; ++y) row[static_cast<size_t>(y)] = x[y] - data.top[i0 + c];
        std::fill(row.begin() + m, row.end(), 0.0);
        exp_array(row.data(), pad4(m), erow.data());
        w[static_cast<size_t>(c)] = data.weights[i0 + c];
        for (int64_t y = 0; y < m; ++y) {
          // Rates >= e^-700 cannot underflow, and rounding x - max(x) moves such an
          // exponent by <= 700 eps / 2: direct ratios are within 4e-14. Otherwise
          // the ratio is a logistic of the difference of the two rewards.
          if (row[static_cast<size_t>(y)] < -700.0) safe = false;
          eT[static_cast<size_t>(y * count4 + c)] = erow[static_cast<size_t>(y)];
          xT[static_cast<size_t>(y * count4 + c)] = x[y];
        }
      } else {
        w[static_cast<size_t>(c)] = 0.0;
        for (int64_t y = 0; y < m; ++y) {
          eT[static_cast<size_t>(y * count4 + c)] = 1.0;
          xT[static_cast<size_t>(y * count4 + c)] = 0.0;
        }
      }
    }
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 4) if (m * m * count >= kParallelMinWork)
#endif
    for (int64_t y = 0; y < m; ++y) {
      const double* ey = eT.data() + y * count4;
      const double* xy = xT.data() + y * count4;
      for (int64_t z = y + 1; z < m; ++z) {
        double s;
        if (safe) {
          s = ratio_dot(w.data(), ey, eT.data() + z * count4, count4);
        } else {
          const double* xz = xT.data() + z * count4;
          s = 0.0;
          for (int64_t c = 0; c < count; ++c) s += w[static_cast<size_t>(c)] * logistic(xz[c] - xy[c]);
        }
        neumaier_add(out[y * m + z], comp[static_cast<size_t>(y * m + z)], s);
      }
    }
  }
  for (int64_t y = 0; y < m; ++y) {
    out[y * m + y] = 0.5;
    for (int64_t z = y + 1; z < m; ++z) {
      const double v = out[y * m + z] + comp[static_cast<size_t>(y * m + z)];
      out[y * m + z] = v;
      out[z * m + y] = 1.0 - v;
    }
  }
}

}  // namespace pl
}  // namespace ualign
