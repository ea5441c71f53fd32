// Audits of single-output policies over many independent prompts (the paper's
// contextual setting): for every prompt p with its own population and policy
// pi_p, and every k of a list,
//
//   robust level    1 - max_y P[y >' pi_p^(k)]   (mirrored ties, as ua.robust_level)
//   opponent        the argmax of that (the worst-case opponent)
//   best response   argmax_y u_y, u_y = P[y > pi_p^(k)]   (as ua.best_response)
//   exploitability  max_y u_y - sum_y pi_p(y) u_y         (as ua.exploitability)
//
// Prompts have ragged sizes. Each prompt is computed by one thread with the very
// kernel the per-prompt API calls (beats_kernel), whose voter partition depends
// only on (n, m): results are bit-for-bit those of the per-prompt API for any
// number of threads. Small prompts are spread over threads; a prompt large
// enough to split its voters into several lanes is run alone with its own
// threads (beats_kernel does not nest a team inside the loop over prompts).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "parallel.hpp"
#include "ranking_store.hpp"
#include "ties.hpp"

namespace ualign {

// The correctly rounded sum of x[0..n) (Shewchuk's exact partials with the
// half-even fix-up of CPython's math.fsum). Being correctly rounded it is unique,
// so it equals math.fsum bit for bit whatever the algorithm. `partials` is scratch.
inline double exact_sum(const double* x, int64_t n, std::vector<double>& partials) {
  partials.clear();
  for (int64_t j = 0; j < n; ++j) {
    double v = x[j];
    size_t kept = 0;
    for (size_t t = 0; t < partials.size(); ++t) {
      double y = partials[t];
      if (std::fabs(v) < std::fabs(y)) std::swap(v, y);
      const double hi = v + y;
      const double lo = y - (hi - v);
      if (lo != 0.0) partials[kept++] = lo;
      v = hi;
    }
    partials.resize(kept);
    partials.push_back(v);
  }
  size_t count = partials.size();
  if (count == 0) return 0.0;
  double hi = partials[--count], lo = 0.0;
  while (count > 0) {
    const double x = hi, y = partials[--count];
    hi = x + y;
    lo = y - (hi - x);
    if (lo != 0.0) break;
  }
  if (count > 0 && ((lo < 0.0 && partials[count - 1] < 0.0) || (lo > 0.0 && partials[count - 1] > 0.0))) {
    const double y = lo * 2.0, x = hi + y;
    if (y == x - hi) hi = x;
  }
  return hi;
}

inline Ties mirror_of(Ties ties) {
  return ties == Ties::strict ? Ties::weak : ties == Ties::weak ? Ties::strict : ties;
}

// Outputs of a batch audit, each n_prompts x n_ks, row-major by prompt.
struct PolicyAuditOut {
  double* robust_level;
  int64_t* opponent;
  int64_t* best_response;
  double* best_utility;
  double* exploitability;
};

// Scratch of one thread.
struct PolicyAuditScratch {
  std::vector<double> u, v, products, partials, uniform;
};

// Audits prompt p (policy pi, or the uniform policy when pi is null) for every k.
inline void audit_policy_prompt(const RankingStore& store, const double* pi, const int64_t* ks, int64_t n_ks,
                                Ties ties, int64_t p, const PolicyAuditOut& out, PolicyAuditScratch& s) {
  const int64_t m = store.m();
  const size_t size = static_cast<size_t>(m);
  if (pi == nullptr) {
    s.uniform.assign(size, 1.0 / static_cast<double>(m));
    pi = s.uniform.data();
  }
  s.u.resize(size);
  s.v.resize(size);
  s.products.resize(size);
  const Ties mirror = mirror_of(ties);
  const double one = 1.0;
  const int64_t no_offsets = 0;
  for (int64_t j = 0; j < n_ks; ++j) {
    Operand op;  // Product(pi, k), exactly as ualign.operands builds it
    op.m = m;
    op.n_products = 1;
    op.policies = pi;
    op.product_probs = &one;
    op.ks = ks + j;
    op.offsets = &no_offsets;
    store.visit([&](const auto& view) {
      beats_kernel(view, op, ties, s.u.data());
      if (mirror != ties) beats_kernel(view, op, mirror, s.v.data());
    });
    const double* loss = mirror != ties ? s.v.data() : s.u.data();
    // First index of the maximum, as numpy's argmax (no NaN can occur).
    const int64_t worst = std::max_element(loss, loss + m) - loss;
    const int64_t best = std::max_element(s.u.data(), s.u.data() + m) - s.u.data();
    for (int64_t y = 0; y < m; ++y) s.products[static_cast<size_t>(y)] = pi[y] * s.u[static_cast<size_t>(y)];
    const int64_t cell = p * n_ks + j;
    out.robust_level[cell] = 1.0 - loss[worst];
    out.opponent[cell] = worst;
    out.best_response[cell] = best;
    out.best_utility[cell] = s.u[static_cast<size_t>(best)];
    out.exploitability[cell] = s.u[static_cast<size_t>(best)] - exact_sum(s.products.data(), m, s.partials);
  }
}

// All prompts. policies[p] may be null (uniform policy).
inline void audit_policy_batch(const std::vector<const RankingStore*>& stores, const std::vector<const double*>& policies,
                               const int64_t* ks, int64_t n_ks, Ties ties, const PolicyAuditOut& out) {
  const int64_t n_prompts = static_cast<int64_t>(stores.size());
  std::vector<int64_t> small, large;
  int64_t small_work = 0;
  for (int64_t p = 0; p < n_prompts; ++p) {
    const RankingStore& store = *stores[static_cast<size_t>(p)];
    if (VoterPartition(store.n(), store.m()).lanes > 1) {
      large.push_back(p);
    } else {
      small.push_back(p);
      small_work += store.n() * store.m() * n_ks;
    }
  }
  for (const int64_t p : large) {  // each with the threads of its own kernel
    PolicyAuditScratch scratch;
    audit_policy_prompt(*stores[static_cast<size_t>(p)], policies[static_cast<size_t>(p)], ks, n_ks, ties, p, out,
                        scratch);
  }
  const int64_t n_small = static_cast<int64_t>(small.size());
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (n_small > 1 && small_work >= kParallelMinWork)
#endif
  {
    PolicyAuditScratch scratch;
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (int64_t j = 0; j < n_small; ++j) {
      const size_t p = static_cast<size_t>(small[static_cast<size_t>(j)]);
      audit_policy_prompt(*stores[p], policies[p], ks, n_ks, ties, static_cast<int64_t>(p), out, scratch);
    }
  }
}

}  // namespace ualign
