// The per-element code of formats.h, rounding.h and rules.h is written once, for a "lane": a
// scalar float / uint32_t here (the CUDA kernels and the scalar CPU loops), or a 16-lane vector
// (the AVX-512 CPU kernel, cpu/vec16.h, which defines the same helpers for its types; they are
// found by argument-dependent lookup when the templates are instantiated).
//
// Lane code uses the arithmetic and bitwise operators, comparisons (bool here, a lane mask
// there), and these helpers instead of `?:`, std::sqrt and conversions. Constants in a select
// are spelled T(x), which broadcasts for vector types.
#pragma once

#include <cmath>
#include <cstdint>

#include "bitkernels/macros.h"

namespace bitkernels {

// c ? a : b, lane by lane. Both sides are computed: lane code stays branch-free.
template <class T>
BK_INLINE T select(bool c, T a, T b) {
  return c ? a : b;
}

BK_INLINE float sqrt_of(float x) { return std::sqrt(x); }

// float(u): uint32 to the nearest fp32 (exact below 2^24).
BK_INLINE float to_f32(uint32_t u) { return float(u); }

// uint32_t(x): truncation toward zero, for 0 <= x < 2^32.
BK_INLINE uint32_t to_u32(float x) { return uint32_t(x); }

}  // namespace bitkernels
