// Loops of bitkernels::bitflip_stats on the CPU, compiled once per ISA (for_each_isa.h, from
// bitflip_stats.cpp): no include guard; bitflip_stats.cpp includes the guarded headers this
// needs first.

#include "stats_isa.h"
#if BK_ISA_AVX512
#include "bitflip_avx512.h"
#endif

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

namespace s = ::bitkernels::stats;

BK_ALWAYS_INLINE uint32_t load_word(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

template <int kElemBits>
BK_ALWAYS_INLINE uint32_t changed_in_word(uint32_t x) {
  if constexpr (kElemBits == 32) return x != 0u;
  return uint32_t((x & 0xFFFFu) != 0u) + uint32_t((x >> 16) != 0u);
}

// flips and changed of a^b over nwords 32-bit words.
template <int kElemBits>
void count_xor_words(const uint8_t* a, const uint8_t* b, int64_t nwords, Partial& out) {
  using Lanes = LanesU32x8;
  constexpr int kGroupWords = 16 * Lanes::kLanes;
#if BK_ISA_AVX512
  int64_t i = count_xor_words_avx512<kElemBits>(a, b, nwords, out);
#else
  int64_t i = 0;
#endif
  PositionCounter<Lanes> flips;
  // Per lane, drained every 256 groups (the tests' 2^17-element tensors get there): far from
  // wrapping.
  u32x8 changed = {};
  for (int64_t groups = 1; i + kGroupWords <= nwords; i += kGroupWords, ++groups) {
    if (groups % 256 == 0) {
      out.changed += Lanes::lane_sum(changed);
      changed = u32x8{};
    }
    flips.add16([&](int v) BK_ALWAYS_INLINE_LAMBDA {
      const int64_t byte = 4 * (i + Lanes::kLanes * v);
      // A line of each per two vectors: two read streams per thread reach the bandwidth only
      // with software prefetches (16M fp32 pairs at x86-64-v3: 3.9 ms without, 2.7 with).
      if (v % 2 == 0) {
        prefetch_ahead(a + byte, 0, 4);
        prefetch_ahead(b + byte, 0, 4);
      }
      const u32x8 x = Lanes::load(reinterpret_cast<const uint32_t*>(a + byte)) ^
                      Lanes::load(reinterpret_cast<const uint32_t*>(b + byte));
      // A true lane of a vector comparison is -1.
      if constexpr (kElemBits == 32) {
        changed -= (u32x8)(x != 0u);
      } else {
        changed -= (u32x8)((x & 0xFFFFu) != 0u);
        changed -= (u32x8)((x >> 16) != 0u);
      }
      return x;
    });
  }
  flips.finish(out.flips);
  out.changed += Lanes::lane_sum(changed);
  for (; i < nwords; ++i) {
    const uint32_t x = load_word(a + 4 * i) ^ load_word(b + 4 * i);
    for (int k = 0; k < 32; ++k) out.flips[k] += (x >> k) & 1u;
    out.changed += changed_in_word<kElemBits>(x);
  }
}

// The whole contract for elements [begin, end) given the intended update d.
template <class F>
void count_with_update(const typename F::bits_t* a, const typename F::bits_t* b,
                       const uint32_t* d, int64_t begin, int64_t end, Partial& out) {
#if BK_ISA_AVX512
  if ((_mm_getcsr() & kDenormalsAreZero) == 0)  // else the loops below do everything
    begin = count_with_update_avx512<F>(a, b, d, begin, end, out);
  if (begin == end) return;
#endif
  StatsBlock block;
  PositionCounter<LanesU32x8> flips;
#if BK_ISA_AVX2
  GroupStats<F> groups;
  const bool count_groups = (_mm_getcsr() & kDenormalsAreZero) == 0;
#endif
  for (int64_t b0 = begin; b0 < end; b0 += StatsBlock::kBlock) {
    const int n = int(std::min<int64_t>(StatsBlock::kBlock, end - b0));
#if BK_ISA_AVX2
    if (count_groups) {
      // The AVX2 groups of the steps (stats_avx2.h) with a zero gradient, group by group, so
      // that the next group's loads are in flight while one is counted.
      for (int j0 = 0; j0 < n; j0 += GroupStats<F>::kGroup) {
        const int j1 = std::min(n, j0 + GroupStats<F>::kGroup);
        const int64_t ahead = b0 + j0 + kPrefetchElements;
        prefetch_elements(a, ahead, GroupStats<F>::kGroup, sizeof(*a));
        prefetch_elements(b, ahead, GroupStats<F>::kGroup, sizeof(*b));
        prefetch_elements(d, ahead, GroupStats<F>::kGroup, sizeof(uint32_t));
#pragma omp simd
        for (int j = j0; j < j1; ++j) {
          block.flip[j] = uint32_t(a[b0 + j]) ^ uint32_t(b[b0 + j]);
          block.d_bits[j] = d[b0 + j];
          block.g[j] = 0.0f;
        }
        groups.count(block, b + b0, j0, j1 - j0, out);
      }
      continue;
    }
#endif
    // The general path (count_general.h) on the arrays themselves, the flips stored as it
    // goes, no gradient: without AVX2, one pass over the block instead of two (15% faster).
    count_elements<true>(block, 0, n, [&](int j) {
      return s::element_stats<F>(a[b0 + j], b[b0 + j], d[b0 + j], 0.0f);
    }, out);
    flips.add_words(block.flip, n);
  }
#if BK_ISA_AVX2
  groups.finish(out);
#endif
  flips.finish(out.flips);
  block.finish(out);
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
