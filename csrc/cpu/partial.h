// Per-thread (per-chunk) partial statistics of the CPU kernels and their commit to a BitStats
// buffer row: one atomic add per nonzero counter.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "bitkernels/bitstats.h"
#include "simd.h"

namespace bitkernels {
namespace cpu {

using VectorBits = stats::BitPositionCounter<u32x8>;

struct Partial {
  int64_t flips[32] = {};  // positions in a 32-bit word; 16-bit formats fold k+16 onto k
  int64_t changed = 0, lost = 0, zero = 0, nonfinite = 0;
  int64_t depth[stats::kDepthBins] = {};
  double sums[stats::kNumSums] = {};

  void add(const Partial& o) {
    for (int k = 0; k < 32; ++k) flips[k] += o.flips[k];
    changed += o.changed;
    lost += o.lost;
    zero += o.zero;
    nonfinite += o.nonfinite;
    for (int j = 0; j < stats::kDepthBins; ++j) depth[j] += o.depth[j];
    for (int j = 0; j < stats::kNumSums; ++j) sums[j] += o.sums[j];
  }
};

// Adds p to one BitStats row. numel elements and `steps` steps are counted. Safe to call from
// several threads for the same row.
inline void commit_atomic(const Partial& p, int width, bool with_update, int64_t numel,
                          int64_t steps, int64_t* counters, double* sums) {
  auto add = [](int64_t* slot, int64_t v) {
    if (v != 0) __atomic_fetch_add(slot, v, __ATOMIC_RELAXED);
  };
  for (int k = 0; k < width; ++k)
    add(counters + stats::kFlips + k, p.flips[k] + (width == 16 ? p.flips[k + 16] : 0));
  add(counters + stats::kChanged, p.changed);
  add(counters + stats::kNumel, numel);
  add(counters + stats::kSteps, steps);
  if (!with_update) return;
  add(counters + stats::kLost, p.lost);
  add(counters + stats::kZero, p.zero);
  add(counters + stats::kNonfinite, p.nonfinite);
  for (int j = 0; j < stats::kDepthBins; ++j) add(counters + stats::kDepth + j, p.depth[j]);
  for (int j = 0; j < stats::kNumSums; ++j) {
    if (p.sums[j] != 0.0) {
#pragma omp atomic
      sums[j] += p.sums[j];
    }
  }
}

// Harley-Seal carry-save adder on bit-sliced lanes: a + b + c = 2 * high + low, per bit.
BK_ALWAYS_INLINE void carry_save_add(u32x8& high, u32x8& low, u32x8 a, u32x8 b, u32x8 c) {
  const u32x8 u = a ^ b;
  high = (a & b) | (u & c);
  low = u ^ c;
}

// Counts the bit positions of buffers of 32-bit flip masks, 8 lanes at a time, into p.flips.
// Carry-save adders fold each group of 16 vectors into one "sixteens" vector (Harley-Seal; the
// running remainder is kept bit-sliced in ones .. eights), so the per-position counting of
// VectorBits runs once per 16 vectors instead of once per vector. The 16-bit fields persist
// across calls: `half` counts ones, `half16` counts sixteens.
struct FlipBufferCounter {
  static constexpr int kGroupWords = 16 * kLanes;  // words per group of 16 vectors
  static constexpr int kMaxWords = VectorBits::kNibbleWords * kGroupWords;  // per add()

  u32x8 half[16];
  u32x8 half16[16];
  int calls_since_drain = 0;

  FlipBufferCounter() {
    for (auto& h : half) h = u32x8{};
    for (auto& h : half16) h = u32x8{};
  }

  // nwords: a multiple of kGroupWords (callers zero-pad), at most kMaxWords.
  BK_ALWAYS_INLINE void add(const uint32_t* x, int nwords, Partial& p) {
    u32x8 ones{}, twos{}, fours{}, eights{};
    VectorBits by16;  // nibble fields counting sixteens (<= 15 per call)
    for (auto& n : by16.nibble) n = u32x8{};
    for (auto& h : by16.half) h = u32x8{};
    for (int w = 0; w < nwords; w += kGroupWords) {
      u32x8 v[16];
      std::memcpy(v, x + w, sizeof v);
      u32x8 twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, sixteens;
      carry_save_add(twos_a, ones, ones, v[0], v[1]);
      carry_save_add(twos_b, ones, ones, v[2], v[3]);
      carry_save_add(fours_a, twos, twos, twos_a, twos_b);
      carry_save_add(twos_a, ones, ones, v[4], v[5]);
      carry_save_add(twos_b, ones, ones, v[6], v[7]);
      carry_save_add(fours_b, twos, twos, twos_a, twos_b);
      carry_save_add(eights_a, fours, fours, fours_a, fours_b);
      carry_save_add(twos_a, ones, ones, v[8], v[9]);
      carry_save_add(twos_b, ones, ones, v[10], v[11]);
      carry_save_add(fours_a, twos, twos, twos_a, twos_b);
      carry_save_add(twos_a, ones, ones, v[12], v[13]);
      carry_save_add(twos_b, ones, ones, v[14], v[15]);
      carry_save_add(fours_b, twos, twos, twos_a, twos_b);
      carry_save_add(eights_b, fours, fours, fours_a, fours_b);
      carry_save_add(sixteens, eights, eights, eights_a, eights_b);
      by16.add(sixteens);
    }
    // The remainder, weighted: 1 + 2 + 4 + 8 = 15 adds, exactly one nibble field's capacity.
    VectorBits rest;
    for (auto& n : rest.nibble) n = u32x8{};
    for (auto& h : rest.half) h = u32x8{};
    rest.add(ones);
    for (int r = 0; r < 2; ++r) rest.add(twos);
    for (int r = 0; r < 4; ++r) rest.add(fours);
    for (int r = 0; r < 8; ++r) rest.add(eights);
    rest.fold();
    by16.fold();
    for (int k = 0; k < 16; ++k) {
      half[k] += rest.half[k];
      half16[k] += by16.half[k];
    }
    if (++calls_since_drain == VectorBits::kFoldsPerDrain) drain(p);
  }

  BK_ALWAYS_INLINE void drain(Partial& p) {
    for (int k = 0; k < 16; ++k) {
      for (int l = 0; l < kLanes; ++l) {
        p.flips[k] += (half[k][l] & 0xFFFFu) + 16 * int64_t(half16[k][l] & 0xFFFFu);
        p.flips[k + 16] += (half[k][l] >> 16) + 16 * int64_t(half16[k][l] >> 16);
      }
      half[k] = half16[k] = u32x8{};
    }
    calls_since_drain = 0;
  }
};

}  // namespace cpu
}  // namespace bitkernels
