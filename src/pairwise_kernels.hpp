// The strict pairwise matrix S[y, z] = sum_i w_i 1[level_i(y) < level_i(z)].
//
// Voters are processed in tiles of kTileWords * 64. A tile is transposed to
// response-major 16-bit levels, so comparing two responses over 64 voters is a
// few SIMD compares whose results are packed into one 64-bit mask; the weighted
// count of the mask is 8 lookups in per-byte tables of partial weight sums
// built once per tile. That is ~m^2 * n / 64 mask operations, against m^2 * n
// scalar compare-and-adds for a per-voter loop (see bench/README.md).
// Every entry is accumulated over tiles in a fixed order with Neumaier
// compensation; threads own whole rows, so the result does not depend on them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define UALIGN_PAIRWISE_SSE2 1
#endif

#include "parallel.hpp"
#include "ranking_kernels.hpp"

namespace ualign {

inline constexpr int64_t kTileWords = 4;
inline constexpr int64_t kTileVoters = kTileWords * 64;

// Bit v of the result is set iff a[v] < b[v], for 64 consecutive voters.
inline uint64_t less_mask64(const int16_t* a, const int16_t* b) {
#ifdef UALIGN_PAIRWISE_SSE2
  uint64_t mask = 0;
  for (int part = 0; part < 4; ++part) {
    const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16 * part));
    const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16 * part + 8));
    const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * part));
    const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * part + 8));
    const __m128i lt = _mm_packs_epi16(_mm_cmplt_epi16(a0, b0), _mm_cmplt_epi16(a1, b1));
    mask |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(lt)) & 0xFFFFu) << (16 * part);
  }
  return mask;
#else
  uint64_t mask = 0;
  for (int v = 0; v < 64; ++v) mask |= static_cast<uint64_t>(a[v] < b[v]) << v;
  return mask;
#endif
}

// Levels beyond int16 (more than 32768 of them) take this scalar path.
inline uint64_t less_mask64(const int32_t* a, const int32_t* b) {
  uint64_t mask = 0;
  for (int v = 0; v < 64; ++v) mask |= static_cast<uint64_t>(a[v] < b[v]) << v;
  return mask;
}

template <class Tile, class Level>
void less_matrix_tiled(const RankingView<Level>& data, double* out) {
  const int64_t n = data.n, m = data.m;
  std::vector<double> comp(static_cast<size_t>(m * m), 0.0);
  std::fill_n(out, m * m, 0.0);
  // Response-major tile: tile[y * kTileVoters + v]. Padding voters get level 0
  // everywhere, so they never satisfy a strict comparison.
  std::vector<Tile> tile(static_cast<size_t>(m * kTileVoters));
  // tables[(word * 8 + byte) * 256 + mask] = sum of the weights selected by mask.
  std::vector<double> tables(static_cast<size_t>(kTileWords * 8 * 256));
  for (int64_t t0 = 0; t0 < n; t0 += kTileVoters) {
    const int64_t count = std::min(kTileVoters, n - t0);
    std::fill(tile.begin(), tile.end(), Tile(0));
    for (int64_t v = 0; v < count; ++v) {
      const Level* row = data.row(t0 + v);
      for (int64_t y = 0; y < m; ++y) tile[static_cast<size_t>(y * kTileVoters + v)] = static_cast<Tile>(row[y]);
    }
    for (int64_t group = 0; group < kTileWords * 8; ++group) {
      double* table = tables.data() + group * 256;
      table[0] = 0.0;
      for (int bits = 1; bits < 256; ++bits) {
        int low = 0;
        while (!((bits >> low) & 1)) ++low;
        const int64_t v = group * 8 + low;
        const double w = v < count ? data.weights[t0 + v] : 0.0;
        table[bits] = table[bits & (bits - 1)] + w;
      }
    }
#ifdef UALIGN_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 8) if (m * m >= kParallelMinWork / 16)
#endif
    for (int64_t y = 0; y < m; ++y) {
      const Tile* a = tile.data() + y * kTileVoters;
      double* s = out + y * m;
      double* c = comp.data() + y * m;
      for (int64_t z = 0; z < m; ++z) {
        const Tile* b = tile.data() + z * kTileVoters;
        double total = 0.0;
        for (int64_t word = 0; word < kTileWords; ++word) {
          const uint64_t mask = less_mask64(a + 64 * word, b + 64 * word);
          if (mask == 0) continue;
          const double* tw = tables.data() + word * 8 * 256;
          total += (tw[mask & 0xFF] + tw[256 + ((mask >> 8) & 0xFF)]) +
                   (tw[512 + ((mask >> 16) & 0xFF)] + tw[768 + ((mask >> 24) & 0xFF)]) +
                   ((tw[1024 + ((mask >> 32) & 0xFF)] + tw[1280 + ((mask >> 40) & 0xFF)]) +
                    (tw[1536 + ((mask >> 48) & 0xFF)] + tw[1792 + (mask >> 56)]));
        }
        neumaier_add(s[z], c[z], total);
      }
    }
  }
  for (int64_t j = 0; j < m * m; ++j) out[j] += comp[static_cast<size_t>(j)];
}

template <class Level>
void less_matrix_kernel(const RankingView<Level>& data, double* out) {
  if (data.m <= 32768) {
    less_matrix_tiled<int16_t>(data, out);
  } else {
    less_matrix_tiled<int32_t>(data, out);
  }
}

}  // namespace ualign
