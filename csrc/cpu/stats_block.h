// Statistics inside a vectorized CPU loop, block by block. The loop over a block of at most
// kBlock elements leaves each element's flip mask (and in the steps its update and gradient) in
// this block's buffers; a PositionCounter (position_counter.h) counts the flips' bit
// positions. The other counters come from the general path (count_general.h): a
// vectorized loop writes class codes (depth bin and flags) and reduces the four sums, and
// count_codes() counts the codes with interleaved histograms. With AVX2 the steps count most
// groups of 128 elements with GroupStats (stats_avx2.h) instead, flips included.
#pragma once

#include <cstdint>
#include <cstring>

#include "bitkernels/bitstats.h"
#include "partial.h"
#include "simd.h"

namespace bitkernels {
namespace cpu {

// The counters of one element as a class code for one histogram: moving updates (finite,
// nonzero d) are bin | changed << 6 | nonfinite << 7 (0 .. 255); the others 256 + changed |
// zero << 1 | nonfinite << 2. The joint histogram gives depth, changed, lost (moving and not
// changed), zero and nonfinite, so the vector loop keeps no counter registers.
constexpr int kClassCodes = 264;

BK_ALWAYS_INLINE uint32_t class_code(const stats::ElementStats& e) {
  // Arithmetic, not ?: (with that select GCC gave up if-converting the step loop). For moving
  // elements depth_bin < 64, so adding 256 * !moving and the other flags is an exact blend.
  const uint32_t still = 1u - e.moving;
  return uint32_t(e.depth_bin & 63) * e.moving + (e.changed << (6u * e.moving)) +
         ((e.nonfinite << 7) >> (5u * still)) + ((e.zero << 1) + 256u) * still;
}

struct StatsBlock {
  // 15 groups of 16 vectors of 8 lanes (the AVX2 steps count the groups as they go); the
  // buffers take ~22 KB of L1.
  static constexpr int kBlock = 15 * 128;
  static constexpr int kHistograms = 8;  // interleaved: consecutive equal codes do not chain

  alignas(32) uint32_t flip[kBlock];
  // 32-bit like everything else in the simd loop: a narrower store would make the compiler
  // pick 32 lanes (4 registers per value) and spill.
  alignas(32) uint32_t code[kBlock];
  // The update's bits and the unscaled gradient, kept by the step loops for the statistics.
  alignas(32) uint32_t d_bits[kBlock];
  alignas(32) float g[kBlock];
  uint32_t hist[kHistograms][kClassCodes] = {};

  // Counts class codes begin .. n-1 into the histograms.
  BK_ALWAYS_INLINE void count_codes(int begin, int n) {
    int j = begin;
    for (; j + kHistograms <= n; j += kHistograms)
      for (int h = 0; h < kHistograms; ++h) ++hist[h][code[j + h]];
    for (; j < n; ++j) ++hist[0][code[j]];
  }

  // Adds the histograms' counters to p and clears them.
  BK_ALWAYS_INLINE void finish(Partial& p) {
    for (int c = 0; c < kClassCodes; ++c) {
      int64_t count = 0;
      for (int h = 0; h < kHistograms; ++h) count += hist[h][c];
      if (count == 0) continue;
      if (c < 256) {
        p.depth[c & 63] += count;
        (c & 64 ? p.changed : p.lost) += count;
        if (c & 128) p.nonfinite += count;
      } else {
        if (c & 1) p.changed += count;
        if (c & 2) p.zero += count;
        if (c & 4) p.nonfinite += count;
      }
    }
    std::memset(hist, 0, sizeof hist);
  }
};

// ---- the float64 sums ------------------------------------------------------------------------
// Squares of x * 2^40 are added in fp32 over a span of a block (kSumSpan elements in the general
// loops, 16 per lane in the AVX2 groups and the AVX-512 kernel: about 1e-6 relative
// error) and the span totals in float64, scaled back by 2^-80. The scaling puts the squares of
// |x| in [1e-31, 1.6e7] in fp32's normal range; a span whose fp32 totals are not finite (an |x|
// beyond that) is summed again in float64 by exact_sums(), so no value overflows the sums. Squares of |x| < 1e-31 are lost (less than 1e-62 each). The realized
// change q - p is taken in fp32: exact when old and new are within a factor of 2 (Sterbenz),
// within half an fp32 ulp otherwise, and an overflow sends the block to exact_sums().
constexpr float kSquareScale = 1099511627776.0f;  // 2^40
// Elements per fp32 partial sum in the general loops: at most 64 terms per fp32 accumulator even
// where the compiler does not vectorize the loop (the -O1 sanitizer build), so the totals stay
// within 64 * 2^-24 ~ 4e-6 relative. Spans of 256 reached 1.04e-5 there (300 equal Lion
// updates), whole 1920-element blocks 1.6e-5.
constexpr int kSumSpan = 64;
constexpr double kSquareUnscale = 8.2718061255302767e-25;  // 2^-80

BK_ALWAYS_INLINE float scaled_square(float x) {
  const float y = x * kSquareScale;
  return y * y;
}

inline bool finite_sums(float d2, float g2, float p2, float r2) {
  const float total = d2 + g2 + p2 + r2;  // inf or NaN if any is
  return total - total == 0.0f;
}

// Adds a block's fp32 sums (reduced by its simd loop into locals: OpenMP reductions need
// variables).
BK_ALWAYS_INLINE void add_sums(Partial& p, float d2, float g2, float p2, float r2) {
  p.sums[stats::kSumD2] += double(d2) * kSquareUnscale;
  p.sums[stats::kSumG2] += double(g2) * kSquareUnscale;
  p.sums[stats::kSumP2] += double(p2) * kSquareUnscale;
  p.sums[stats::kSumR2] += double(r2) * kSquareUnscale;
}

// The sums of elements begin..end-1 of a block in float64, element(j) giving its ElementStats: the
// slow path for blocks whose fp32 sums overflowed.
template <class ElementAt>
void exact_sums(int begin, int end, ElementAt element, Partial& p) {
  for (int j = begin; j < end; ++j) {
    const stats::ElementStats e = element(j);
    p.sums[stats::kSumD2] += double(e.d) * double(e.d);
    p.sums[stats::kSumG2] += double(e.g) * double(e.g);
    p.sums[stats::kSumP2] += double(e.p) * double(e.p);
    const double realized = double(e.q) - double(e.p);
    p.sums[stats::kSumR2] += realized * realized;
  }
}

}  // namespace cpu
}  // namespace bitkernels
