// Rounding of fp32 results into the stored format, and the counter-based RNG of stochastic
// rounding. Everything is integer or exactly-rounded fp32 arithmetic, so every backend (CPU,
// CUDA, Triton, the torch reference) produces the same bits.
//
// NaN results are stored as the format's canonical quiet NaN (0x7FC00000, 0x7FC0, 0x7E00):
// hardware and libraries disagree on NaN payloads and signs, and the statistics count bits.
#pragma once

#include <cstdint>

#include "bitkernels/formats.h"
#include "bitkernels/macros.h"

namespace bitkernels {

template <class F>
BK_HD constexpr uint32_t canonical_nan() {
  return F::kWidth == 32 ? 0x7FC00000u : (F::kExponent == 8 ? 0x7FC0u : 0x7E00u);
}

// Everything below is lane code (see lanes.h): V is float or a vector of fp32 lanes, U uint32_t
// or a vector of uint32 lanes; stored bits are zero-extended to 32-bit lanes.

template <class U>
BK_INLINE auto is_nan_fp32(U bits) {
  return (bits & 0x7FFFFFFFu) > 0x7F800000u;
}

// ---- round to nearest, ties to even ---------------------------------------------------------
template <class F, class V>
BK_INLINE auto round_nearest(V v) {
  using U = decltype(float_bits(v));
  const U b = float_bits(v);
  if constexpr (F::kWidth == 32) {
    return select(is_nan_fp32(b), U(canonical_nan<Fp32>()), b);
  } else if constexpr (F::kExponent == 8) {
    // Adding 0x7FFF plus the lowest kept bit rounds the top half to nearest-even; a carry into
    // the exponent is the correct result, including overflow to inf.
    const U rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
    return select(is_nan_fp32(b), U(canonical_nan<Bf16>()), rounded);
  } else {
    const U sign = (b >> 16) & 0x8000u;
    const U mag = b & 0x7FFFFFFFu;
    // Results below 2^-14 are fp16 subnormals: adding 0.5 puts their 10 bits at the bottom of
    // an fp32 mantissa and the fp32 addition rounds them to nearest-even. (An fp32 subnormal
    // input is far below half the smallest fp16 subnormal, so flush-to-zero modes agree.)
    const U subnormal = float_bits(bits_float(mag) + 0.5f) - 0x3F000000u;
    // Normal results: rebias the exponent and round the 13 dropped bits to nearest-even; a
    // carry into the exponent is correct, up to overflow to inf.
    const U normal = (mag + 0xC8000FFFu + ((mag >> 13) & 1u)) >> 13;
    U out = select(mag < 0x38800000u, subnormal, normal);
    out = select(mag >= 0x47800000u, U(0x7C00u), out);  // >= 65536: inf (65520.. carry there)
    return select(is_nan_fp32(b), U(canonical_nan<Fp16>()), out | sign);
  }
}

// ---- the random stream -------------------------------------------------------------------------
// A 32-bit integer mixer (xorshift-multiply, "lowbias32"): a bijection with good avalanche.
template <class U>
BK_INLINE U mix32(U x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

// The key of one tensor's stream at one step; the host computes it once per tensor per step
// (bitkernels/rounding.py mirrors it).
BK_INLINE uint32_t stream_key(uint64_t seed, uint32_t tensor_index, uint32_t step) {
  const uint32_t s = mix32(uint32_t(seed) ^ mix32(uint32_t(seed >> 32)));
  return mix32(mix32(s ^ tensor_index) ^ step);
}

// 32 random bits for element i of a stream, given the low and high halves of i.
template <class U>
BK_INLINE U element_random_halves(uint32_t key, U low, U high) {
  return mix32(U(key) ^ mix32(low ^ (high * 0x9E3779B9u)));
}

BK_INLINE uint32_t element_random(uint32_t key, uint64_t i) {
  return element_random_halves(key, uint32_t(i), uint32_t(i >> 32));
}

// ---- stochastic rounding ---------------------------------------------------------------------
// Rounds v to one of its two neighbours in F with probabilities proportional to closeness, so
// the expected stored value is v. r: 32 random bits. fp32 results are already stored exactly.
template <class F, class V, class U>
BK_INLINE U round_stochastic(V v, U r) {
  if constexpr (F::kWidth == 32) {
    return round_nearest<Fp32>(v);
  } else if constexpr (F::kExponent == 8) {
    // bf16 keeps the top 16 bits of fp32 at every exponent (subnormals included): add 16
    // random bits below the cut, then truncate. Carries into the exponent (and into inf) are
    // exact.
    const U b = float_bits(v);
    const U rounded = (b + (r >> 16)) >> 16;
    return select(is_finite_bits<Fp32>(b), rounded, round_nearest<Bf16>(v));
  } else {
    const U b = float_bits(v);
    const U sign = b & 0x80000000u;
    const U mag = b & 0x7FFFFFFFu;
    // Normal fp16 range (|v| >= 2^-14): the fp16 grid keeps the top 10 of fp32's 23 mantissa
    // bits; add 13 random bits below the cut and truncate.
    const V on_grid_normal = bits_float(sign | ((mag + (r & 0x1FFFu)) & ~0x1FFFu));
    // Subnormal range: the grid is k * 2^-24. q = |v| * 2^24 is exact; round its fraction up
    // with probability frac using 24 random bits.
    const V q = bits_float(mag) * 16777216.0f;
    const V whole = to_f32(to_u32(q));  // q < 2^10: the conversion truncates exactly
    const V u = to_f32(r >> 8) * 5.9604644775390625e-08f;  // uniform in [0, 1), step 2^-24
    const V up = select(u < q - whole, V(1.0f), V(0.0f));
    const V on_grid_subnormal =
        bits_float(sign | float_bits((whole + up) * 5.9604644775390625e-08f));
    const V on_grid = select(mag < 0x38800000u, on_grid_subnormal, on_grid_normal);
    // On the grid, nearest rounding is exact; above 65504 it gives inf (the next grid point).
    return select(is_finite_bits<Fp32>(b), round_nearest<Fp16>(on_grid), round_nearest<Fp16>(v));
  }
}

// ---- rounding mode as a compile-time choice ------------------------------------------------
enum class Rounding { kNearest = 0, kStochastic = 1 };

template <class F, Rounding kMode, class V, class U>
BK_INLINE U round_to(V v, U random_bits) {
  if constexpr (kMode == Rounding::kStochastic) {
    return round_stochastic<F>(v, random_bits);
  } else {
    return round_nearest<F>(v);
  }
}

}  // namespace bitkernels
