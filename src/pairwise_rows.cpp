#include "pairwise_rows.hpp"

#include "parallel.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define UALIGN_X86 1
#endif

// The avx2 variant (dispatch.hpp) is compiled with -mavx2 -mpopcnt.
#if defined(UALIGN_X86) && defined(__AVX2__) && defined(__POPCNT__)
#define UALIGN_AVX2 1
#endif

namespace ualign::UALIGN_ISA {

namespace {

// ---- 64-voter comparison masks ------------------------------------------------

#ifdef UALIGN_X86
inline uint64_t less_mask_sse2(const int16_t* a, const int16_t* b) {
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
}
#endif

#ifdef UALIGN_AVX2
inline uint64_t less_mask_avx2(const int16_t* a, const int16_t* b) {
  uint64_t mask = 0;
  for (int half = 0; half < 2; ++half) {
    const int16_t* pa = a + 32 * half;
    const int16_t* pb = b + 32 * half;
    const __m256i lt0 = _mm256_cmpgt_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb)),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pa)));
    const __m256i lt1 = _mm256_cmpgt_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + 16)),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pa + 16)));
    // packs interleaves 128-bit lanes; the permute restores voter order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi16(lt0, lt1), 0xD8);
    mask |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(packed))) << (32 * half);
  }
  return mask;
}
#endif

template <class T>
inline uint64_t less_mask_scalar(const T* a, const T* b) {
  uint64_t mask = 0;
  for (int v = 0; v < 64; ++v) mask |= static_cast<uint64_t>(a[v] < b[v]) << v;
  return mask;
}

inline double table_sum(const double* tw, uint64_t mask) {
  return ((tw[mask & 0xFF] + tw[256 + ((mask >> 8) & 0xFF)]) +
          (tw[512 + ((mask >> 16) & 0xFF)] + tw[768 + ((mask >> 24) & 0xFF)])) +
         ((tw[1024 + ((mask >> 32) & 0xFF)] + tw[1280 + ((mask >> 40) & 0xFF)]) +
          (tw[1536 + ((mask >> 48) & 0xFF)] + tw[1792 + (mask >> 56)]));
}

inline int popcount64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(x);
#else
  int count = 0;
  for (; x; x &= x - 1) ++count;
  return count;
#endif
}

// The row loop, generic over the mask function so each instruction set gets its
// own fully inlined copy.
template <class T, class Mask, class Count>
inline void add_less_row_with(const PairwiseTile& tile, int64_t y, int64_t z_begin, double* s, double* c,
                              Mask less_mask, Count count_bits) {
  const T* levels = static_cast<const T*>(tile.levels);
  const T* a = levels + y * kTileVoters;
  for (int64_t z = z_begin; z < tile.m; ++z) {
    const T* b = levels + z * kTileVoters;
    double total = 0.0;
    if (tile.equal_weights) {
      int64_t count = 0;
      for (int64_t word = 0; word < kTileWords; ++word) count += count_bits(less_mask(a + 64 * word, b + 64 * word));
      total = static_cast<double>(count) * tile.weight;
    } else {
      for (int64_t word = 0; word < kTileWords; ++word) {
        const uint64_t mask = less_mask(a + 64 * word, b + 64 * word);
        if (mask != 0) total += table_sum(tile.tables + word * 8 * 256, mask);
      }
    }
    neumaier_add(s[z], c[z], total);
  }
}

}  // namespace

void add_less_row(const PairwiseTile& tile, int64_t y, int64_t z_begin, double* s, double* c) {
  const auto portable_count = [](uint64_t x) { return static_cast<int64_t>(popcount64(x)); };
  if (tile.wide) {
    add_less_row_with<int32_t>(tile, y, z_begin, s, c, less_mask_scalar<int32_t>, portable_count);
    return;
  }
#if defined(UALIGN_AVX2)
  // popcount64 is one popcnt instruction here (-mpopcnt).
  add_less_row_with<int16_t>(tile, y, z_begin, s, c, less_mask_avx2, portable_count);
#elif defined(UALIGN_X86)
  add_less_row_with<int16_t>(tile, y, z_begin, s, c, less_mask_sse2, portable_count);
#else
  add_less_row_with<int16_t>(tile, y, z_begin, s, c, less_mask_scalar<int16_t>, portable_count);
#endif
}

}  // namespace ualign::UALIGN_ISA
