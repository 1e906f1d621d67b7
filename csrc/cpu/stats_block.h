// Statistics inside a vectorized CPU loop. The loop (an `omp simd` loop over a block of at most
// kBlock elements) reduces the scalar counters and sums itself (add them with add_scalars) and
// writes each element's flip mask and depth bin into this block's buffers; flush() then counts
// the buffers: bit positions 8 lanes at a time, depth bins with four interleaved histograms (no
// store-forwarding chains between consecutive equal bins).
#pragma once

#include <cstdint>
#include <cstring>

#include "bitkernels/bitstats.h"
#include "partial.h"
#include "simd.h"

namespace bitkernels {
namespace cpu {

struct StatsBlock {
  static constexpr int kBlock = 1920;  // 16 folds of 15 vectors of 8 lanes; ~10 KB of buffers;
                                      // 240 elements per lane in fp32 sums
  static constexpr int kNoBin = stats::kDepthBins;

  alignas(32) uint32_t flip[kBlock];
  // 32-bit like everything else in the simd loop: a narrower store would make the compiler
  // pick 32 lanes (4 registers per value) and spill.
  alignas(32) uint32_t bin[kBlock];
  // The update's bits, kept by loops whose inputs the step overwrites, for exact_sums().
  alignas(32) uint32_t d_bits[kBlock];
  uint32_t hist[4][stats::kDepthBins + 1] = {};
  FlipBufferCounter flips;

  // Counts the first n entries of the buffers into p.
  BK_ALWAYS_INLINE void flush(int n, Partial& p) {
    const int padded = (n + kLanes - 1) / kLanes * kLanes;
    for (int j = n; j < padded; ++j) flip[j] = 0u;
    flips.add(flip, padded, p);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      ++hist[0][bin[j]];
      ++hist[1][bin[j + 1]];
      ++hist[2][bin[j + 2]];
      ++hist[3][bin[j + 3]];
    }
    for (; j < n; ++j) ++hist[0][bin[j]];
  }

  BK_ALWAYS_INLINE void finish(Partial& p) {
    flips.drain(p);
    for (int b = 0; b < stats::kDepthBins; ++b)
      p.depth[b] += int64_t(hist[0][b]) + hist[1][b] + hist[2][b] + hist[3][b];
    std::memset(hist, 0, sizeof hist);
  }
};

// ---- the float64 sums ------------------------------------------------------------------------
// Squares of x * 2^40 are added in fp32 within a block (8 lanes, at most kBlock / 8 terms each,
// about 1e-6 relative error) and the block totals in float64, scaled back by 2^-80. The scaling
// puts the squares of |x| in [1e-31, 1.6e7] in fp32's normal range; a block whose fp32 totals
// are not finite (an |x| beyond that) is summed again in float64 by exact_sums(), so no value
// overflows the sums. Squares of |x| < 1e-31 are lost (less than 1e-62 each). The realized
// change q - p is taken in fp32: exact when old and new are within a factor of 2 (Sterbenz),
// within half an fp32 ulp otherwise, and an overflow sends the block to exact_sums().
constexpr float kSquareScale = 1099511627776.0f;  // 2^40
constexpr double kSquareUnscale = 8.2718061255302767e-25;  // 2^-80

BK_ALWAYS_INLINE float scaled_square(float x) {
  const float y = x * kSquareScale;
  return y * y;
}

inline bool finite_sums(float d2, float g2, float p2, float r2) {
  const float total = d2 + g2 + p2 + r2;  // inf or NaN if any is
  return total - total == 0.0f;
}

// Adds the scalar counters a block's simd loop reduced (as locals: OpenMP reductions need
// variables) and its fp32 sums.
BK_ALWAYS_INLINE void add_scalars(Partial& p, uint32_t changed, uint32_t lost, uint32_t zero,
                                  uint32_t nonfinite, float d2, float g2, float p2, float r2) {
  p.changed += changed, p.lost += lost, p.zero += zero, p.nonfinite += nonfinite;
  p.sums[stats::kSumD2] += double(d2) * kSquareUnscale;
  p.sums[stats::kSumG2] += double(g2) * kSquareUnscale;
  p.sums[stats::kSumP2] += double(p2) * kSquareUnscale;
  p.sums[stats::kSumR2] += double(r2) * kSquareUnscale;
}

// The sums of elements 0..n-1 of a block in float64, element(j) giving its ElementStats: the
// slow path for blocks whose fp32 sums overflowed.
template <class ElementAt>
void exact_sums(int n, ElementAt element, Partial& p) {
  for (int j = 0; j < n; ++j) {
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
