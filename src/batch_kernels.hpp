// Audits of single-output policies over many independent prompts (the paper's
// contextual setting): for every prompt p with its own population and policy
// pi_p, and every k of a list,
//
//   robust level    1 - max_y P[y >' pi_p^(k)]   (mirrored ties, as ua.robust_level)
//   opponent        the argmax of that (the worst-case opponent)
//   best response   argmax_y u_y, u_y = P[y > pi_p^(k)]   (as ua.best_response)
//   exploitability  max_y u_y - sum_y pi_p(y) u_y         (as ua.exploitability)
//
// Prompts have ragged sizes. Each prompt is computed by one thread with the
// kernel the per-prompt API calls: beats_multi_k for the k of the four-voter path
// (one pass over the voters for all of them; the per-prompt API runs the list of
// its one k), beat_probabilities_kernel for the others. Results are bit-for-bit
// those of the per-prompt API for any number of threads. Small prompts are spread over threads; a prompt large
// enough to split its voters into several lanes is run alone with its own
// threads (beat_probabilities_kernel does not nest a team inside the loop over prompts).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "dispatch.hpp"
#include "parallel.hpp"
#include "prompt_batch.hpp"
#include "ranking_store.hpp"
#include "ties.hpp"

namespace ualign {

// The correctly rounded sum of x[0..n) by Shewchuk's exact partials with the
// half-even fix-up of CPython's math.fsum. Being correctly rounded it is unique,
// so it equals math.fsum bit for bit whatever the algorithm. `scratch` is reused.
inline double exact_sum_partials(const double* x, int64_t n, std::vector<double>& scratch) {
  // There are never more partials than terms: one buffer, no reallocation.
  if (scratch.size() < static_cast<size_t>(n) + 1) scratch.resize(static_cast<size_t>(n) + 1);
  double* partials = scratch.data();
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j) {
    double v = x[j];
    int64_t kept = 0;
    for (int64_t t = 0; t < count; ++t) {
      double y = partials[t];
      if (std::fabs(v) < std::fabs(y)) std::swap(v, y);
      const double hi = v + y;
      const double lo = y - (hi - v);
      if (lo != 0.0) partials[kept++] = lo;
      v = hi;
    }
    partials[kept] = v;
    count = kept + 1;
  }
  if (count == 0) return 0.0;
  double hi = partials[--count], lo = 0.0;
  while (count > 0) {
    const double x0 = hi, y = partials[--count];
    hi = x0 + y;
    lo = y - (hi - x0);
    if (lo != 0.0) break;
  }
  if (count > 0 && ((lo < 0.0 && partials[count - 1] < 0.0) || (lo > 0.0 && partials[count - 1] > 0.0))) {
    const double y = lo * 2.0, x0 = hi + y;
    if (y == x0 - hi) hi = x0;
  }
  return hi;
}

// The correctly rounded sum of x[0..n) (= math.fsum), fast: the terms are added
// error-free into hi (TwoSum) with the errors summed into lo; r = fl(hi + lo) is the
// answer whenever the exact residual of r plus the (tiny) rounding bound of lo
// stays inside r's rounding interval, which fails only within ~n^2 eps^2 of a
// rounding boundary; then the exact partials decide.
inline double exact_sum(const double* x, int64_t n, std::vector<double>& scratch) {
  double hi = 0.0, lo = 0.0, spread = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const double s = hi + x[j];
    const double b = s - hi;
    const double e = (hi - (s - b)) + (x[j] - b);
    hi = s;
    lo += e;
    spread += std::fabs(e);
  }
  const double r = hi + lo;
  const double b = r - hi;
  const double t = (hi - (r - b)) + (lo - b);                          // r + t == hi + lo exactly
  constexpr double u = 1.1102230246251565e-16;                         // 2^-53
  const double bound = 2.0 * static_cast<double>(n + 1) * u * spread;  // |lo - sum of errors|, generously
  if (r != 0.0 && std::isfinite(r) && std::isfinite(spread)) {
    const double gap = std::min(r - std::nextafter(r, -INFINITY), std::nextafter(r, INFINITY) - r);
    if (std::fabs(t) + bound < 0.5 * gap) return r;
  }
  const double exact = exact_sum_partials(x, n, scratch);
  return exact == 0.0 ? 0.0 : exact;  // the sign of a zero sum differs between Python versions
}

// Renormalises, in place, each row p of flat (entries offsets[p] .. offsets[p+1])
// whose correctly rounded sum totals[p] is not 1, as ualign._validate does a policy
// within the sum tolerance: divided by totals[p], then its (first) largest entry set
// to the correctly rounded 1 - (the exact sum of the others). The row's exact sum is
// then within half an ulp of 1 and its correctly rounded sum exactly 1, so that
// renormalising again changes nothing. Entries finite and >= 0, totals > 0.
inline void renormalise_rows(double* flat, const int64_t* offsets, int64_t n_rows, const double* totals) {
  std::vector<double> terms, partials;
  for (int64_t p = 0; p < n_rows; ++p) {
    if (totals[p] == 1.0) continue;
    double* row = flat + offsets[p];
    const int64_t size = offsets[p + 1] - offsets[p];
    for (int64_t j = 0; j < size; ++j) row[j] /= totals[p];
    const int64_t top = std::max_element(row, row + size) - row;
    terms.resize(static_cast<size_t>(size));
    for (int64_t j = 0; j < size; ++j) terms[static_cast<size_t>(j)] = -row[j];
    terms[static_cast<size_t>(top)] = 1.0;
    row[top] = exact_sum(terms.data(), size, partials);
  }
}

inline Ties mirror_of(Ties ties) {
  return ties == Ties::strict ? Ties::weak : ties == Ties::weak ? Ties::strict : ties;
}

// What an audit reports of a policy, from the utilities u[y] = P[y > X] of its
// operand X in the game and the losses loss[y] = P[y >' X] under the mirrored
// convention (the same array when they agree):
//   robust level    1 - max_y loss[y], attained by the opponent (the first argmax)
//   best response   the first argmax of u, and its utility
//   exploitability  max_y u[y] - sum_y pi[y] u[y], the sum correctly rounded
//                   (NaN when pi is null: a multi-output policy)
// The one implementation of this arithmetic: the per-prompt API calls it too.
struct PolicyAudit {
  double robust_level;
  int64_t opponent;
  int64_t best_response;
  double best_utility;
  double exploitability;
  double mean_utility;
};

inline PolicyAudit audit_from_utilities(const double* u, const double* loss, const double* pi, int64_t m,
                                        std::vector<double>& products, std::vector<double>& partials) {
  // First index of the maximum, as numpy's argmax (the kernels produce no NaN).
  const int64_t worst = std::max_element(loss, loss + m) - loss;
  const int64_t best = std::max_element(u, u + m) - u;
  PolicyAudit audit{1.0 - loss[worst], worst, best, u[best], NAN, NAN};
  if (pi != nullptr) {
    products.resize(static_cast<size_t>(m));
    for (int64_t y = 0; y < m; ++y) products[static_cast<size_t>(y)] = pi[y] * u[y];
    audit.mean_utility = exact_sum(products.data(), m, partials);
    audit.exploitability = u[best] - audit.mean_utility;
  }
  return audit;
}

// Outputs of a batch audit, each n_prompts x n_ks, row-major by prompt.
struct PolicyAuditOut {
  double* robust_level;
  int64_t* opponent;
  int64_t* best_response;
  double* best_utility;
  double* exploitability;

  void store(int64_t cell, const PolicyAudit& audit) const {
    robust_level[cell] = audit.robust_level;
    opponent[cell] = audit.opponent;
    best_response[cell] = audit.best_response;
    best_utility[cell] = audit.best_utility;
    exploitability[cell] = audit.exploitability;
  }
};

// One prompt of a packed batch (the layout Dask chunks travel in): a view of its
// voters' dense levels inside arrays shared by many prompts. Offers what the batch
// audit uses of a RankingStore: n(), m() and visit().
template <class Level>
struct PackedPrompt {
  RankingView<Level> view;
  int64_t n() const { return view.n; }
  int64_t m() const { return view.m; }
  template <class F>
  decltype(auto) visit(F&& f) const {
    return f(view);
  }
};

// Scratch of one thread.
struct PolicyAuditScratch {
  std::vector<double> u, v, products, partials, uniform, fused;
  std::vector<int64_t> fused_ks, fused_at;
  MultiKScratch multi;
};

// u[j*m + y] = P[y > pi^(ks[j])] under `ties` for every j, as beat_probabilities_kernel computes
// each: fused over the k it can fuse, one beat_probabilities_kernel call for each other k.
template <class Prompt>
void beats_for_ks(const Prompt& store, const double* pi, const int64_t* ks, int64_t n_ks, Ties ties, double* u,
                  std::vector<int64_t>& fused_ks, std::vector<int64_t>& fused_at, std::vector<double>& fused,
                  MultiKScratch& scratch, bool serial) {
  const int64_t m = store.m();
  const double one = 1.0;
  const int64_t no_offsets = 0;
  fused_ks.clear();
  fused_at.clear();
  for (int64_t j = 0; j < n_ks; ++j) {
    if (four_voter_path(ks[j])) {
      fused_ks.push_back(ks[j]);
      fused_at.push_back(j);
    }
  }
  const bool fuse = !fused_ks.empty() && fused_partition_ok(store.n(), m, static_cast<int64_t>(fused_ks.size()));
  if (fuse) {
    fused.resize(fused_ks.size() * static_cast<size_t>(m));
    store.visit([&](const auto& view) { beats_multi_k(view, pi, fused_ks, ties, fused.data(), scratch, serial); });
    for (size_t f = 0; f < fused_ks.size(); ++f)
      std::copy(fused.begin() + static_cast<std::ptrdiff_t>(f * m),
                fused.begin() + static_cast<std::ptrdiff_t>((f + 1) * m), u + fused_at[f] * m);
  }
  size_t f = 0;
  for (int64_t j = 0; j < n_ks; ++j) {
    if (fuse && f < fused_at.size() && fused_at[f] == j) {
      ++f;
      continue;
    }
    Operand op;  // Product(pi, k), exactly as ualign.operands builds it
    op.m = m;
    op.n_products = 1;
    op.policies = pi;
    op.product_probs = &one;
    op.ks = ks + j;
    op.offsets = &no_offsets;
    store.visit([&](const auto& view) { beat_probabilities_kernel(view, op, ties, u + j * m); });
  }
}

// Audits prompt p (policy pi, or the uniform policy when pi is null) for every k.
template <class Prompt>
void audit_policy_prompt(const Prompt& store, const double* pi, const int64_t* ks, int64_t n_ks, Ties ties, int64_t p,
                         const PolicyAuditOut& out, PolicyAuditScratch& s, bool serial) {
  const int64_t m = store.m();
  const size_t size = static_cast<size_t>(m);
  if (pi == nullptr) {
    s.uniform.assign(size, 1.0 / static_cast<double>(m));
    pi = s.uniform.data();
  }
  s.u.resize(size * static_cast<size_t>(n_ks));
  s.products.resize(size);
  const Ties mirror = mirror_of(ties);
  beats_for_ks(store, pi, ks, n_ks, ties, s.u.data(), s.fused_ks, s.fused_at, s.fused, s.multi, serial);
  if (mirror != ties) {
    s.v.resize(size * static_cast<size_t>(n_ks));
    beats_for_ks(store, pi, ks, n_ks, mirror, s.v.data(), s.fused_ks, s.fused_at, s.fused, s.multi, serial);
  }
  for (int64_t j = 0; j < n_ks; ++j) {
    const double* u = s.u.data() + j * m;
    const double* loss = mirror != ties ? s.v.data() + j * m : u;
    out.store(p * n_ks + j, audit_from_utilities(u, loss, pi, m, s.products, s.partials));
  }
}

// All prompts. policies[p] may be null (uniform policy).
template <class Prompt>
void audit_policy_batch(const std::vector<const Prompt*>& stores, const std::vector<const double*>& policies,
                        const int64_t* ks, int64_t n_ks, Ties ties, const PolicyAuditOut& out) {
  std::vector<int64_t> voters, widths;
  for (const Prompt* store : stores) {
    voters.push_back(store->n());
    widths.push_back(store->m());
  }
  for_each_prompt<PolicyAuditScratch>(voters, widths, [&](int64_t p, PolicyAuditScratch& scratch, bool serial) {
    const size_t j = static_cast<size_t>(p);
    audit_policy_prompt(*stores[j], policies[j], ks, n_ks, ties, p, out, scratch, serial);
  });
}

}  // namespace ualign
