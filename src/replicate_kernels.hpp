// Audits of one fixed policy on many reweightings of one population (the
// bootstrap replicates of a prompt), in one pass over its voters: the voters of a
// population of rankings, or the types of a mixture of Plackett-Luce types.
//
// A replicate b gives voter (type) i the weight W[b][i] and changes nothing else,
// and the utility of response y is linear in those weights:
//
//   u_b[y] = P_b[y > pi^(k)] = sum_i W[b][i] P_i[y > pi^(k)].
//
// So each voter's values P_i[y > pi^(k)] (and under the mirrored convention, where
// it differs) are computed once per k and the B replicates' utilities are the
// weighted sums U = W P; each replicate's audit is then audit_from_utilities, as
// for a single prompt. The value arithmetic runs once instead of B times. A source
// supplies the values, with the arithmetic of the utilities themselves:
//   * RankingValues: the per-voter level kernels (product_levels_x4 /
//     add_product_levels with weight 1, then a gather);
//   * TypeValues: pl::TypeBeats, one type's P_i[y > pi^(k)] as the beats kernel
//     forms it (each comparison is one choice by one type). The mixture has no
//     ties, so every convention and its mirror give the same values: one set of
//     columns serves both, as the per-replicate audits (which call the one kernel
//     for utilities and losses) see them.
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
#include <optional>
#include <utility>
#include <vector>

#include "batch_kernels.hpp"
#include "level_kernels.hpp"
#include "operand.hpp"
#include "parallel.hpp"
#include "pl_kernels.hpp"
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

// The values of the voters of a population of rankings, kGroup at a time.
template <class Level>
struct RankingValues {
  static constexpr int64_t kItem = kGroup;  // voters per call of fill
  const RankingView<Level>& data;
  const double* pi;
  const ReplicateColumns& cols;

  VoterValuesScratch scratch() const { return {}; }
  void fill(VoterValuesScratch& s, int64_t first, int64_t count, double* rows) const {
    voter_values(data, first, count, pi, cols, s, rows);
  }
};

// The values of the types of a Plackett-Luce mixture, one type at a time: for the
// j-th k, P_i[y > pi^(k)] from the beats kernel's own per-type evaluation (all nodes
// in one block). Types that no replicate weighs are skipped (their rows are zeros,
// never read: the sums skip zero weights). Holds pointers into itself: not copied.
class TypeValues {
 public:
  static constexpr int64_t kItem = 1;

  TypeValues(const pl::PLView& data, const double* pi, const ReplicateColumns& cols, const std::vector<char>& weighed)
      : data_(data), cols_(cols), weighed_(weighed) {
    const int64_t n_ks = static_cast<int64_t>(cols.ks.size());
    operands_.reserve(static_cast<size_t>(n_ks));  // prepared_ points into it
    prepared_.reserve(static_cast<size_t>(n_ks));
    for (int64_t j = 0; j < n_ks; ++j) {
      operands_.push_back(product_operand(data.m, pi, cols.ks.data() + j));
      prepared_.emplace_back(operands_.back(), data.m);
    }
  }
  TypeValues(const TypeValues&) = delete;
  TypeValues& operator=(const TypeValues&) = delete;

  std::vector<pl::TypeBeats> scratch() const {
    std::vector<pl::TypeBeats> beats;
    for (const pl::Prepared& P : prepared_) beats.emplace_back(data_, P, 1);
    return beats;
  }
  void fill(std::vector<pl::TypeBeats>& beats, int64_t first, int64_t count, double* rows) const {
    const int64_t m = data_.m, width = cols_.width();
    for (int64_t v = 0; v < count; ++v) {
      double* row = rows + v * width;
      if (!weighed_[static_cast<size_t>(first + v)]) {
        std::fill_n(row, width, 0.0);
        continue;
      }
      for (size_t j = 0; j < beats.size(); ++j)
        std::copy_n(beats[j].block(first + v, 0), m, row + static_cast<int64_t>(j) * m);
    }
  }

 private:
  const pl::PLView& data_;
  const ReplicateColumns& cols_;
  const std::vector<char>& weighed_;
  std::vector<Operand> operands_;
  std::vector<pl::Prepared> prepared_;
};

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
// * P_i[column] for the replicates b < n_boot, the n voters' values P_i from
// `source`: one pass over the voters, in panels of voters whose values fit
// kPanelBudget (two barriers a panel), each replicate summed plainly over kChunk
// voters at a time (while they are in cache) and folded.
template <class Source>
void replicate_sums(const Source& source, int64_t n, const double* weights, int64_t n_boot, int64_t width, double* sums,
                    double* comps) {
  constexpr int64_t item = Source::kItem;
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
    std::optional<decltype(source.scratch())> scratch;
    std::vector<double> acc;
    trap.run([&] {
      scratch.emplace(source.scratch());
      acc.resize(static_cast<size_t>(width));
    });
    const auto [b_begin, b_end] = replicate_share(n_boot);
    for (int64_t begin = 0; begin < n; begin += panel) {
      const int64_t end = std::min(n, begin + panel);
      const int64_t items = (end - begin + item - 1) / item;
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(static)
#endif
      for (int64_t g = 0; g < items; ++g) {
        if (trap.failed()) continue;
        trap.run([&] {
          const int64_t first = begin + g * item;
          source.fill(*scratch, first, std::min(item, end - first), values.data() + (first - begin) * width);
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

// Audits of pi (null: the uniform policy) on the replicates of n voters and m
// responses with normalised voter weights weights[b * n + i], b < n_boot, for every
// k; out cells are b * n_ks + j. `make_source(cols, pi)` gives the voters' values
// for the columns `cols` (conventions[0 .. n_conventions), a group of at most
// max_group k).
template <class MakeSource>
void audit_replicate_columns(int64_t n, int64_t m, const double* pi, const double* weights, int64_t n_boot,
                             const int64_t* ks, int64_t n_ks, std::array<Ties, 2> conventions, int64_t n_conventions,
                             int64_t max_group, MakeSource make_source, const PolicyAuditOut& out) {
  std::vector<double> uniform;
  if (pi == nullptr) {
    uniform.assign(static_cast<size_t>(m), 1.0 / static_cast<double>(m));
    pi = uniform.data();
  }
  ReplicateColumns cols{conventions, n_conventions, {}, m};
  // k per group: few enough that four voters' values fit in a panel.
  const int64_t group = std::clamp<int64_t>(kPanelBudget / (kGroup * n_conventions * m), 1, max_group);
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
    const auto source = make_source(cols, pi);
    for (int64_t b0 = 0; b0 < n_boot; b0 += block) {
      const int64_t count = std::min(block, n_boot - b0);
      replicate_sums(source, n, weights + b0 * n, count, width, sums.data(), comps.data());
      for (int64_t b = 0; b < count; ++b) {
        for (int64_t col = 0; col < width; ++col) u[col] = sums[b * width + col] + comps[b * width + col];
        for (int64_t j = 0; j < n_group; ++j) {
          const double* utility = u.data() + j * m;
          const double* loss = n_conventions == 2 ? u.data() + (n_group + j) * m : utility;
          out.store((b0 + b) * n_ks + j0 + j, audit_from_utilities(utility, loss, pi, m, products, partials));
        }
      }
    }
  }
}

// On a population of rankings: the game's convention and, where it differs, the
// mirrored one; k in groups of at most what one call of the interleaved kernel fuses.
template <class Level>
void audit_replicates(const RankingView<Level>& data, const double* pi, const double* weights, int64_t n_boot,
                      const int64_t* ks, int64_t n_ks, Ties ties, const PolicyAuditOut& out) {
  const Ties mirror = mirror_of(ties);
  audit_replicate_columns(
      data.n, data.m, pi, weights, n_boot, ks, n_ks, {ties, mirror}, mirror != ties ? 2 : 1, kMaxFusedKs,
      [&](const ReplicateColumns& cols, const double* p) { return RankingValues<Level>{data, p, cols}; }, out);
}

// On a mixture of Plackett-Luce types (no ties: one set of columns, see the top).
inline void audit_replicates(const pl::PLView& data, const double* pi, const double* weights, int64_t n_boot,
                             const int64_t* ks, int64_t n_ks, Ties ties, const PolicyAuditOut& out) {
  std::vector<char> weighed(static_cast<size_t>(data.n), 0);
  for (int64_t b = 0; b < n_boot; ++b)
    for (int64_t i = 0; i < data.n; ++i)
      if (weights[b * data.n + i] != 0.0) weighed[static_cast<size_t>(i)] = 1;
  audit_replicate_columns(
      data.n, data.m, pi, weights, n_boot, ks, n_ks, {ties, ties}, 1, n_ks,
      [&](const ReplicateColumns& cols, const double* p) { return TypeValues(data, p, cols, weighed); }, out);
}

}  // namespace ualign
