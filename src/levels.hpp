// Construction of the compact dense-level storage from ranks, orders or scores.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "parallel.hpp"

namespace ualign {

// First failing row of a parallel row loop (rows are checked independently; the
// smallest failing row is reported so the message does not depend on threads).
struct RowError {
  int64_t row = -1;
  void record(int64_t i) {
#ifdef UALIGN_HAS_OPENMP
#pragma omp critical(ualign_row_error)
#endif
    {
      if (row < 0 || i < row) row = i;
    }
  }
};

// levels[i, y] = dense rank of key[i, y] within row i (0 = best). `better_is_lower`
// selects ranks (lower is better) or scores (higher is better). Equal keys tie.
template <class Key, class Level>
void dense_levels(const Key* keys, int64_t n, int64_t m, bool better_is_lower, Level* levels, int32_t* n_levels) {
  ExceptionTrap trap;  // allocation failures leave the region as exceptions, after it
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (n * m >= kParallelMinWork)
#endif
  {
    std::vector<int64_t> index;
    std::vector<int64_t> used;  // counting path: value - min -> level, or -1 if absent
    trap.run([&] { index.resize(static_cast<size_t>(m)); });
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t i = 0; i < n; ++i) {
      if (trap.failed()) continue;
      const Key* row = keys + i * m;
      if constexpr (std::is_integral_v<Key>) {
        // Integer keys spanning few values (the usual ranks) take a counting pass.
        const auto [lo, hi] = std::minmax_element(row, row + m);
        const uint64_t span = static_cast<uint64_t>(*hi) - static_cast<uint64_t>(*lo);
        if (span < static_cast<uint64_t>(4 * m)) {
          trap.run([&] { used.assign(static_cast<size_t>(span + 1), 0); });
          if (trap.failed()) continue;
          for (int64_t y = 0; y < m; ++y) used[static_cast<uint64_t>(row[y]) - static_cast<uint64_t>(*lo)] = 1;
          int64_t level = 0;
          const int64_t first = better_is_lower ? 0 : static_cast<int64_t>(span);
          const int64_t step = better_is_lower ? 1 : -1;
          for (int64_t j = first; j >= 0 && j <= static_cast<int64_t>(span); j += step) {
            if (used[static_cast<size_t>(j)])
              used[static_cast<size_t>(j)] = level++;
            else
              used[static_cast<size_t>(j)] = -1;
          }
          for (int64_t y = 0; y < m; ++y)
            levels[i * m + y] = static_cast<Level>(used[static_cast<uint64_t>(row[y]) - static_cast<uint64_t>(*lo)]);
          n_levels[i] = static_cast<int32_t>(level);
          continue;
        }
      }
      std::iota(index.begin(), index.end(), int64_t(0));
      if (better_is_lower) {
        std::sort(index.begin(), index.end(), [row](int64_t a, int64_t b) { return row[a] < row[b]; });
      } else {
        std::sort(index.begin(), index.end(), [row](int64_t a, int64_t b) { return row[a] > row[b]; });
      }
      int64_t level = 0;
      for (int64_t p = 0; p < m; ++p) {
        if (p > 0 && row[index[p]] != row[index[p - 1]]) ++level;
        levels[i * m + index[p]] = static_cast<Level>(level);
      }
      n_levels[i] = static_cast<int32_t>(m > 0 ? level + 1 : 0);
    }
  }
  trap.rethrow();
}

// levels[i, orders[i, p]] = p; each row of orders must be a permutation of 0..m-1.
// Returns the first row that is not, or -1.
template <class Index, class Level>
int64_t levels_from_orders(const Index* orders, int64_t n, int64_t m, Level* levels, int32_t* n_levels) {
  RowError error;
  ExceptionTrap trap;  // an allocation failure leaves the region as an exception, after it
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel if (n * m >= kParallelMinWork)
#endif
  {
    std::vector<unsigned char> seen;
    trap.run([&] { seen.resize(static_cast<size_t>(m)); });
#ifdef UALIGN_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (int64_t i = 0; i < n; ++i) {
      if (trap.failed()) continue;
      std::fill(seen.begin(), seen.end(), 0);
      bool ok = true;
      for (int64_t p = 0; p < m; ++p) {
        const Index raw = orders[i * m + p];
        // Compare before converting so negative or huge values of any type fail.
        if constexpr (std::is_signed_v<Index>) {
          if (raw < 0) {
            ok = false;
            break;
          }
        }
        if (static_cast<uint64_t>(raw) >= static_cast<uint64_t>(m)) {
          ok = false;
          break;
        }
        const int64_t y = static_cast<int64_t>(raw);
        if (seen[y]) {
          ok = false;
          break;
        }
        seen[y] = 1;
        levels[i * m + y] = static_cast<Level>(p);
      }
      if (!ok) error.record(i);
      n_levels[i] = static_cast<int32_t>(m);
    }
  }
  trap.rethrow();
  return error.row;
}

}  // namespace ualign
