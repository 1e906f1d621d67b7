// The statistics contract of DESIGN.md, defined once for every C++/CUDA backend.
//
// A backend loops over elements its own way; per element it calls the predicates below and
// feeds the XOR of old and new bits to a BitPositionCounter. Python mirrors the slot layout in
// bitkernels/stats.py (checked by a test through the stats_layout op).
#pragma once

#include <cstdint>

#include "bitkernels/formats.h"
#include "bitkernels/macros.h"

namespace bitkernels {
namespace stats {

// int64 counter slots of one BitStats buffer.
constexpr int kMaxWidth = 32;
constexpr int kFlips = 0;  // kFlips + k: elements with bit k of old^new set (k = 0: mantissa LSB)
constexpr int kChanged = kFlips + kMaxWidth;
constexpr int kLost = kChanged + 1;
constexpr int kZero = kLost + 1;
constexpr int kNonfinite = kZero + 1;
constexpr int kNumel = kNonfinite + 1;
constexpr int kSteps = kNumel + 1;
constexpr int kDepth = kSteps + 1;  // kDepth + j: update depth n = j + kDepthMin
constexpr int kDepthBins = 64;
constexpr int kDepthMin = -40;
constexpr int kDepthMax = kDepthMin + kDepthBins - 1;  // 23
constexpr int kNumCounters = kDepth + kDepthBins;

// float64 sum slots.
constexpr int kSumD2 = 0;  // intended update d^2
constexpr int kSumG2 = 1;  // gradient^2 after unscaling
constexpr int kSumP2 = 2;  // old parameter^2
constexpr int kSumR2 = 3;  // realized (new - old)^2
constexpr int kNumSums = 4;

// ---- per element -------------------------------------------------------------------------
// d is the intended update in fp32, classified by its bits; old/new are stored bits of F.

BK_INLINE bool is_zero_update(uint32_t d_bits) { return (d_bits & 0x7FFFFFFFu) == 0u; }

BK_INLINE bool is_finite_update(uint32_t d_bits) { return is_finite_bits<Fp32>(d_bits); }

// The update was meant to move the element but no stored bit changed.
BK_INLINE bool is_lost(uint32_t d_bits, uint32_t flip_mask) {
  return flip_mask == 0u && is_finite_update(d_bits) && !is_zero_update(d_bits);
}

template <class F>
BK_INLINE bool is_nonfinite(uint32_t d_bits, uint32_t new_bits) {
  return !is_finite_update(d_bits) || !is_finite_bits<F>(new_bits);
}

// Elements whose old value, new value and update are all finite feed the float64 sums; the
// others are counted in `nonfinite` (old inf/NaN forces new inf/NaN in an optimizer step).
template <class F>
BK_INLINE bool feeds_sums(uint32_t d_bits, uint32_t old_bits, uint32_t new_bits) {
  return is_finite_update(d_bits) && is_finite_bits<F>(old_bits) && is_finite_bits<F>(new_bits);
}

// Depth bin of a finite nonzero update: n = floor(log2(|d| / ulp(old))) clamped to
// [kDepthMin, kDepthMax]; the bin is n - kDepthMin. ulp is a power of two, so n is a difference
// of exponents and exact. ulp(inf/NaN) is infinite: those land in the lowest bin.
template <class F>
BK_INLINE int depth_bin(uint32_t d_bits, uint32_t old_bits) {
  int n = floor_log2_fp32(d_bits) - ulp_exponent<F>(old_bits);
  n = n < kDepthMin ? kDepthMin : n;
  n = n > kDepthMax ? kDepthMax : n;
  return n - kDepthMin;
}

// Everything the contract counts about one element, for loops to reduce. Written as selects
// so that a loop calling it vectorizes. The four values for the float64 sums are zero for
// elements outside them; each backend squares and adds them its own way (the CPU in scaled fp32
// per block, see kSquareScale; CUDA and Triton in float64). sum_r2 adds (q - p)^2.
struct ElementStats {
  uint32_t flip_mask;  // old ^ new
  int depth_bin;       // 0 .. kDepthBins-1, or kDepthBins when d is zero or not finite
  uint32_t moving;     // 1 when d is finite and nonzero (depth_bin < kDepthBins)
  uint32_t changed, lost, zero, nonfinite;  // 0 or 1
  float d, g, p, q;    // update, unscaled gradient, old value, new value
};

// old/new: stored bits of F; d_bits: the intended update; g: the unscaled gradient (0 when
// unknown, as in bitflip_stats; it feeds sum_g2 only where finite).
template <class F>
BK_INLINE ElementStats element_stats(uint32_t old_bits, uint32_t new_bits, uint32_t d_bits,
                                     float g) {
  ElementStats e;
  e.flip_mask = old_bits ^ new_bits;
  const bool moving = is_finite_update(d_bits) && !is_zero_update(d_bits);
  e.depth_bin = moving ? depth_bin<F>(d_bits, old_bits) : kDepthBins;
  e.moving = moving;
  e.changed = e.flip_mask != 0u;
  e.lost = is_lost(d_bits, e.flip_mask);
  e.zero = is_zero_update(d_bits);
  e.nonfinite = is_nonfinite<F>(d_bits, new_bits);
  const bool feeds = feeds_sums<F>(d_bits, old_bits, new_bits);
  e.d = feeds ? bits_float(d_bits) : 0.0f;
  e.g = feeds && is_finite_bits<Fp32>(float_bits(g)) ? g : 0.0f;
  e.p = feeds ? to_float<F>(old_bits) : 0.0f;
  e.q = feeds ? to_float<F>(new_bits) : 0.0f;
  return e;
}

// ---- bit-position counting -----------------------------------------------------------------
// Counting which of 32 bit positions are set, word by word, costs 32 shift/and/adds per word.
// Bit-slicing brings that to ~4: `nibble[j]` adds bit 4q+j of each word into its 4-bit field q;
// a field holds 15 words, so every kNibbleWords words the nibbles are folded into 16-bit fields
// of `half` (field 0 of half[k] counts bit k, field 1 counts bit k+16), which hold 65535. The
// owner drains `half` into wide totals every kFoldsPerDrain folds. V is uint32_t, or a host SIMD
// vector of uint32 lanes (the arithmetic is lane-wise either way).
template <class V>
struct BitPositionCounter {
  static constexpr int kNibbleWords = 15;
  static constexpr int kFoldsPerDrain = 4369;  // 4369 * 15 = 65535

  V nibble[4];
  V half[16];

  BK_INLINE void clear() {
    for (int j = 0; j < 4; ++j) nibble[j] = V{};
    for (int k = 0; k < 16; ++k) half[k] = V{};
  }

  BK_INLINE void add(V word) {
    for (int j = 0; j < 4; ++j) nibble[j] += (word >> j) & 0x11111111u;
  }

  BK_INLINE void fold() {
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 4; ++j) half[4 * r + j] += (nibble[j] >> (4 * r)) & 0x000F000Fu;
    for (int j = 0; j < 4; ++j) nibble[j] = V{};
  }

  // Adds the folded counts of bit k (0..31, summed over lanes) to totals[k] and clears `half`.
  // Call fold() first: nibbles are not included.
  template <class Total>
  BK_INLINE void drain(Total* totals) {
    constexpr int kLanes = int(sizeof(V) / sizeof(uint32_t));
    for (int k = 0; k < 16; ++k) {
      for (int l = 0; l < kLanes; ++l) {
        const uint32_t h = lane(half[k], l);
        totals[k] += Total(h & 0xFFFFu);
        totals[k + 16] += Total(h >> 16);
      }
      half[k] = V{};
    }
  }

 private:
  template <class W>
  BK_HD static inline uint32_t lane(const W& v, int l) { return v[l]; }
  BK_HD static inline uint32_t lane(const uint32_t& v, int) { return v; }
};

// A BitPositionCounter that schedules its own folds and drains, for loops that see one word
// at a time (a CUDA thread, a scalar CPU loop). Totals are 64-bit.
struct WordFlipCounter {
  BitPositionCounter<uint32_t> bits;
  int words_since_fold;
  int folds_since_drain;
  unsigned long long totals[32];

  BK_INLINE void clear() {
    bits.clear();
    words_since_fold = 0;
    folds_since_drain = 0;
    for (int k = 0; k < 32; ++k) totals[k] = 0;
  }

  BK_INLINE void add(uint32_t word) {
    bits.add(word);
    if (++words_since_fold == BitPositionCounter<uint32_t>::kNibbleWords) {
      words_since_fold = 0;
      bits.fold();
      if (++folds_since_drain == BitPositionCounter<uint32_t>::kFoldsPerDrain) {
        folds_since_drain = 0;
        bits.drain(totals);
      }
    }
  }

  // Totals of every word added so far; leaves the counter empty.
  BK_INLINE void finish() {
    bits.fold();
    bits.drain(totals);
    words_since_fold = 0;
    folds_since_drain = 0;
  }
};

}  // namespace stats
}  // namespace bitkernels
