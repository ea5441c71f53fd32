// Audits of one fixed policy on many reweightings of one population of rankings
// (the bootstrap replicates of a prompt), in one pass over the voters.
//
// A replicate b gives voter i the weight W[b][i] and changes nothing else, and the
// utility of response y is linear in those weights:
//
//   u_b[y] = P_b[y > pi^(k)] = sum_i W[b][i] P_i[y > pi^(k)].
//
// So each voter's values P_i[y > pi^(k)] (and under the mirrored convention, where
// it differs) are computed once per k, by the per-voter level kernels the
// utilities use (product_levels_x4 / add_product_levels with weight 1, then a
// gather), and the B replicates' utilities are the weighted sums U = W P; each
// replicate's audit is then audit_from_utilities, as for a single prompt. The
// level arithmetic runs once instead of B times.
//
// Order of additions: voters in panels of at most kChunk, summed plainly within a
// panel in voter order and folded into a Neumaier-compensated total panel by panel
// (the accuracy of sum_over_voter_ranges: O(kChunk eps), not O(n eps)). Threads
// split the voters of a panel when computing their values (each voter's values are
// its own) and the replicates when summing (each replicate's sums are its own), so
// every bit is the same for any number of threads. The order differs from the
// per-replicate kernels' lanes: results agree with them to rounding, not bit for bit.
//
// Memory: the values of one panel (at most kPanelBudget doubles, at least four
// voters) and the sums of a block of replicates (at most kReplicateBudget doubles,
// at least one replicate), whatever n and B; k are taken in groups to keep within
// both, each group and block with its own pass over the voters.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "batch_kernels.hpp"
#include "level_kernels.hpp"
#include "parallel.hpp"
#include "ranking_kernels.hpp"
#include "ties.hpp"

namespace ualign {

inline constexpr int64_t kPanelBudget = int64_t(1) << 20;      // doubles of voter values (8 MiB)
inline constexpr int64_t kReplicateBudget = int64_t(1) << 24;  // doubles of replicate sums (128 MiB)

// The columns of a pass: for convention c (0: the game's, 1: the mirrored one) and
// the j-th k of the group, the m responses at ((c * n_ks + j) * m).
struct ReplicateColumns {
  std::array<Ties, 2> conventions;
  int64_t n_conventions;
  std::vector<int64_t> ks;  // the group's k
  int64_t m;
  int64_t width() const { return n_conventions * static_cast<int64_t>(ks.size()) * m; }
};

// Buffers of one thread for voter_values.
struct VoterValuesScratch {
  std::vector<int64_t> fused_ks, fused_at;
  KSchedule schedule;
  std::vector<double> values, mass, below, level_value;
};

// rows[v * width + column] = P_i[y > pi^(k)] (weight 1) for the count (<= kGroup)
// voters i = first + v: four voters through the interleaved kernel for the k it
// fuses, any other voter or k through add_product_levels.
template <class Level>
void voter_values(const RankingView<Level>& data, int64_t first, int64_t count, const double* pi,
                  const ReplicateColumns& cols, VoterValuesScratch& s, double* rows) {
  const int64_t m = data.m, n_ks = static_cast<int64_t>(cols.ks.size()), width = cols.width();
  const size_t level_size = static_cast<size_t>(padded_levels(m + 1));
  s.fused_ks.clear();
  s.fused_at.clear();
  if (count == kGroup) {
    for (int64_t j = 0; j < n_ks; ++j) {
      if (four_voter_path(cols.ks[static_cast<size_t>(j)])) {
        s.fused_ks.push_back(cols.ks[static_cast<size_t>(j)]);
        s.fused_at.push_back(j);
      }
    }
  }
  const int64_t n_fused = static_cast<int64_t>(s.fused_ks.size());
  if (n_fused > 0) {
    const std::array<double, kGroup> ones{1.0, 1.0, 1.0, 1.0};
    const auto [size, strict_rows] = group_levels(data, first);
    s.schedule.assign(s.fused_ks);
    s.values.resize(static_cast<size_t>(n_fused * kGroup) * level_size);
    for (int64_t c = 0; c < cols.n_conventions; ++c) {
      product_levels_x4(data.row(first), m, size, strict_rows, pi, s.fused_ks.data(), n_fused,
                        s.schedule.first_at.data(), s.schedule.next.data(), ones.data(),
                        cols.conventions[static_cast<size_t>(c)], s.values.data(), s.values.data());
      // values[4 * (r * n_fused + f) + v]: voter v's value at level r for fused_ks[f].
      for (int64_t v = 0; v < kGroup; ++v) {
        const Level* row = data.row(first + v);
        for (int64_t f = 0; f < n_fused; ++f) {
          double* out = rows + v * width + (c * n_ks + s.fused_at[static_cast<size_t>(f)]) * m;
          const double* at = s.values.data() + 4 * f + v;
          for (int64_t y = 0; y < m; ++y) out[y] = at[4 * n_fused * static_cast<int64_t>(row[y])];
        }
      }
    }
  }
  s.mass.resize(level_size);
  s.below.resize(level_size);
  s.level_value.resize(level_size);
  size_t next_fused = 0;
  for (int64_t j = 0; j < n_ks; ++j) {
    if (next_fused < s.fused_at.size() && s.fused_at[next_fused] == j) {
      ++next_fused;
      continue;
    }
    for (int64_t v = 0; v < count; ++v) {
      const Level* row = data.row(first + v);
      const int64_t R = data.n_levels[first + v];
      for (int64_t c = 0; c < cols.n_conventions; ++c) {
        std::fill_n(s.level_value.begin(), padded_levels(R), 0.0);
        add_product_levels(row, m, R, pi, cols.ks[static_cast<size_t>(j)], 1.0,
                           cols.conventions[static_cast<size_t>(c)], s.mass.data(), s.below.data(),
                           s.level_value.data());
        double* out = rows + v * width + (c * n_ks + j) * m;
        for (int64_t y = 0; y < m; ++y) out[y] = s.level_value[static_cast<size_t>(row[y])];
      }
    }
  }
}

// The replicates [begin, end) of n_boot that thread `thread` of `threads` sums: a
// static split (it decides only who adds, never in which order).
inline std::pair<int64_t, int64_t> replicate_share(int64_t n_boot) {
#ifdef UALIGN_HAS_OPENMP
  const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
#else
  const int64_t threads = 1, thread = 0;
#endif
  return {n_boot * thread / threads, n_boot * (thread + 1) / threads};
}

// sums[b * width + column] (with Neumaier compensations comps) = sum_i weights[b * n + i]
// * P_i[column] for the replicates b < n_boot: one pass over the voters, in panels
// of voters whose values fit kPanelBudget (two barriers a panel), each replicate
// summed plainly over kChunk voters at a time (while they are in cache) and folded.
template <class Level>
void replicate_sums(const RankingView<Level>& data, const double* pi, const double* weights, int64_t n_boot,
                    const ReplicateColumns& cols, double* sums, double* comps) {
  const int64_t n = data.n, width = cols.width();
  const int64_t rows = std::max<int64_t>(kGroup, kPanelBudget / width / kGroup * kGroup);
  const int64_t fold = std::min(rows, kChunk), panel = rows / fold * fold;
  std::vector<double> values(static_cast<size_t>(std::min(panel, n) * width));
  std::fill_n(sums, n_boot * width, 0.0);
  std::fill_n(comps, n_boot * width, 0.0);
  ExceptionTrap trap;
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (n * width * (n_boot + 1) >= kParallelMinWork && !in_parallel_region())
#endif
  {
    VoterValuesScratch scratch;
    std::vector<double> acc;
    trap.run([&] { acc.resize(static_cast<size_t>(width)); });
    const auto [b_begin, b_end] = replicate_share(n_boot);
    for (int64_t begin = 0; begin < n; begin += panel) {
      const int64_t end = std::min(n, begin + panel);
      const int64_t groups = (end - begin + kGroup - 1) / kGroup;
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(static)
#endif
      for (int64_t g = 0; g < groups; ++g) {
        if (trap.failed()) continue;
        trap.run([&] {
          const int64_t first = begin + g * kGroup;
          voter_values(data, first, std::min(kGroup, end - first), pi, cols, scratch,
                       values.data() + (first - begin) * width);
        });
      }
      if (!trap.failed()) {
        double* a = acc.data();
        for (int64_t f0 = begin; f0 < end; f0 += fold) {
          const int64_t f1 = std::min(end, f0 + fold);
          for (int64_t b = b_begin; b < b_end; ++b) {
            std::fill_n(a, width, 0.0);
            const double* w = weights + b * n;
            for (int64_t i = f0; i < f1; ++i) {
              const double wi = w[i];
              if (wi == 0.0) continue;  // a voter the replicate left out adds nothing
              const double* row = values.data() + (i - begin) * width;
              for (int64_t col = 0; col < width; ++col) a[col] += wi * row[col];
            }
            double* sum = sums + b * width;
            double* comp = comps + b * width;
            for (int64_t col = 0; col < width; ++col) neumaier_add(sum[col], comp[col], a[col]);
          }
        }
      }
#ifdef UALIGN_HAS_OPENMP
#pragma omp barrier
#endif
    }
  }
  trap.rethrow();
}

// Audits of pi (null: the uniform policy) on the replicates of `data` with normalised
// voter weights weights[b * n + i], b < n_boot, for every k; out cells are b * n_ks + j.
template <class Level>
void audit_replicates(const RankingView<Level>& data, const double* pi, const double* weights, int64_t n_boot,
                      const int64_t* ks, int64_t n_ks, Ties ties, const PolicyAuditOut& out) {
  const int64_t m = data.m;
  std::vector<double> uniform;
  if (pi == nullptr) {
    uniform.assign(static_cast<size_t>(m), 1.0 / static_cast<double>(m));
    pi = uniform.data();
  }
  const Ties mirror = mirror_of(ties);
  ReplicateColumns cols{{ties, mirror}, mirror != ties ? 2 : 1, {}, m};
  // k per group: at most what one call of the interleaved kernel fuses, and few
  // enough that four voters' values fit in a panel.
  const int64_t group = std::clamp<int64_t>(kPanelBudget / (kGroup * cols.n_conventions * m), 1, kMaxFusedKs);
  std::vector<double> sums, comps, u;
  std::vector<double> products, partials;
  for (int64_t j0 = 0; j0 < n_ks; j0 += group) {
    const int64_t j1 = std::min(n_ks, j0 + group);
    cols.ks.assign(ks + j0, ks + j1);
    const int64_t width = cols.width(), n_group = j1 - j0;
    const int64_t block = std::clamp<int64_t>(kReplicateBudget / (2 * width), 1, n_boot);
    sums.resize(static_cast<size_t>(block * width));
    comps.resize(sums.size());
    u.resize(static_cast<size_t>(width));
    for (int64_t b0 = 0; b0 < n_boot; b0 += block) {
      const int64_t count = std::min(block, n_boot - b0);
      replicate_sums(data, pi, weights + b0 * data.n, count, cols, sums.data(), comps.data());
      for (int64_t b = 0; b < count; ++b) {
        for (int64_t col = 0; col < width; ++col) u[col] = sums[b * width + col] + comps[b * width + col];
        for (int64_t j = 0; j < n_group; ++j) {
          const double* utility = u.data() + j * m;
          const double* loss = cols.n_conventions == 2 ? u.data() + (n_group + j) * m : utility;
          const PolicyAudit audit = audit_from_utilities(utility, loss, pi, m, products, partials);
          const int64_t cell = (b0 + b) * n_ks + j0 + j;
          out.robust_level[cell] = audit.robust_level;
          out.opponent[cell] = audit.opponent;
          out.best_response[cell] = audit.best_response;
          out.best_utility[cell] = audit.best_utility;
          out.exploitability[cell] = audit.exploitability;
        }
      }
    }
  }
}

}  // namespace ualign
