// The strict pairwise matrix S[y, z] = sum_i w_i 1[level_i(y) < level_i(z)].
//
// Voters are processed in tiles of kTileVoters. A tile is transposed to
// response-major 16-bit levels, so comparing two responses over 64 voters is a
// few SIMD compares packed into one 64-bit mask (pairwise_rows.cpp); the mask's
// weight is a popcount when the tile's voters weigh the same, else 8 lookups in
// per-byte tables of partial weight sums built once per tile. That is
// ~m^2 * n / 64 mask operations against m^2 * n scalar compare-and-adds for a
// per-voter loop (see bench/README.md). When no voter has ties, only y < z is
// computed and S[z, y] = 1 - S[y, z].
// Every entry is accumulated over tiles in a fixed order with Neumaier
// compensation; threads own whole rows, so the result does not depend on them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "pairwise_rows.hpp"
#include "parallel.hpp"
#include "ranking_kernels.hpp"

namespace ualign {

template <class Tile, class Level>
void strictly_better_matrix_tiled(const RankingView<Level>& data, double* out) {
  const int64_t n = data.n, m = data.m;
  bool tie_free = true;
  for (int64_t i = 0; i < n; ++i) tie_free = tie_free && data.n_levels[i] == m;

  std::vector<double> comp(static_cast<size_t>(m * m), 0.0);
  std::fill_n(out, m * m, 0.0);
  std::vector<Tile> levels(static_cast<size_t>(m * kTileVoters));
  std::vector<double> tables(static_cast<size_t>(kTileWords * 8 * 256));
  PairwiseTile tile{levels.data(), sizeof(Tile) > 2, m, false, 0.0, tables.data()};

  for (int64_t t0 = 0; t0 < n; t0 += kTileVoters) {
    const int64_t count = std::min(kTileVoters, n - t0);
    std::fill(levels.begin(), levels.end(), Tile(0));
    for (int64_t v = 0; v < count; ++v) {
      const Level* row = data.row(t0 + v);
      for (int64_t y = 0; y < m; ++y) levels[static_cast<size_t>(y * kTileVoters + v)] = static_cast<Tile>(row[y]);
    }
    tile.weight = data.weights[t0];
    tile.equal_weights = true;
    for (int64_t v = 1; v < count; ++v) tile.equal_weights = tile.equal_weights && data.weights[t0 + v] == tile.weight;
    if (!tile.equal_weights) {
      for (int64_t group = 0; group < kTileWords * 8; ++group) {
        double* table = tables.data() + group * 256;
        table[0] = 0.0;
        for (int bits = 1; bits < 256; ++bits) {
          int low = 0;
          while (!((bits >> low) & 1)) ++low;
          const int64_t v = group * 8 + low;
          table[bits] = table[bits & (bits - 1)] + (v < count ? data.weights[t0 + v] : 0.0);
        }
      }
    }
    // A pair costs a few mask operations per tile: a team pays off from about
    // 64 * kParallelMinWork pair-voter comparisons (m = 64 alone runs serially).
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 8) if (m * m * count >= 64 * kParallelMinWork)
#endif
    for (int64_t y = 0; y < m; ++y) {
      add_less_row(tile, y, tie_free ? y + 1 : 0, out + y * m, comp.data() + y * m);
    }
  }
  for (int64_t j = 0; j < m * m; ++j) out[j] += comp[static_cast<size_t>(j)];
  if (tie_free) {
    // Without ties exactly one of y < z, z < y holds for every voter.
    for (int64_t y = 0; y < m; ++y)
      for (int64_t z = 0; z < y; ++z) out[y * m + z] = 1.0 - out[z * m + y];
  }
}

template <class Level>
void strictly_better_matrix_kernel(const RankingView<Level>& data, double* out) {
  if (data.m <= 32768) {
    strictly_better_matrix_tiled<int16_t>(data, out);
  } else {
    strictly_better_matrix_tiled<int32_t>(data, out);
  }
}

}  // namespace ualign
