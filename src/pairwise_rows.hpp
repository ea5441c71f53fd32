// The inner loop of the pairwise kernel: one response against all others over
// one tile of voters. Plain functions, compiled once per instruction set
// (pairwise_rows.cpp into namespace isa_<set>, dispatch.hpp).
#pragma once

#include <cstdint>

#include "dispatch.hpp"

namespace ualign {

inline constexpr int64_t kTileWords = 4;                 // 64-voter words per tile
inline constexpr int64_t kTileVoters = kTileWords * 64;  // voters per tile

// A tile in response-major order: levels[y * kTileVoters + v], padding voters
// at level 0 for every response (so they never compare strictly).
struct PairwiseTile {
  const void* levels;  // int16_t (16-bit tiles) or int32_t
  bool wide;           // int32_t levels (more than 32768 levels)
  int64_t m;
  // Weighted count of a 64-voter mask: either every real voter of the tile has
  // the same weight (popcount * weight), or tables[(word*8 + byte)*256 + bits]
  // hold the sums of the weights selected by each byte.
  bool equal_weights;
  double weight;
  const double* tables;
};

// For z in [z_begin, m): s[z] (+ Neumaier comp c[z]) += sum over the tile's voters
// v of w_v [level_v(y) < level_v(z)].
#define UALIGN_PAIRWISE_ROWS \
  void add_less_row(const PairwiseTile& tile, int64_t y, int64_t z_begin, double* s, double* c);
UALIGN_DECLARE_PER_ISA(UALIGN_PAIRWISE_ROWS)
#undef UALIGN_PAIRWISE_ROWS
UALIGN_DISPATCHED(add_less_row)

}  // namespace ualign
