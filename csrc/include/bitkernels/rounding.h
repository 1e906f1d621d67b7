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
BK_INLINE uint32_t canonical_nan();
template <>
BK_INLINE uint32_t canonical_nan<Fp32>() { return 0x7FC00000u; }
template <>
BK_INLINE uint32_t canonical_nan<Bf16>() { return 0x7FC0u; }
template <>
BK_INLINE uint32_t canonical_nan<Fp16>() { return 0x7E00u; }

BK_INLINE bool is_nan_fp32(uint32_t bits) { return (bits & 0x7FFFFFFFu) > 0x7F800000u; }

// ---- round to nearest, ties to even ---------------------------------------------------------
template <class F>
BK_INLINE uint32_t round_nearest(float v);

template <>
BK_INLINE uint32_t round_nearest<Fp32>(float v) {
  const uint32_t b = float_bits(v);
  return is_nan_fp32(b) ? canonical_nan<Fp32>() : b;
}

template <>
BK_INLINE uint32_t round_nearest<Bf16>(float v) {
  const uint32_t b = float_bits(v);
  // Adding 0x7FFF plus the lowest kept bit rounds the top half to nearest-even; a carry into
  // the exponent is the correct result, including overflow to inf.
  const uint32_t rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
  return is_nan_fp32(b) ? canonical_nan<Bf16>() : rounded;
}

template <>
BK_INLINE uint32_t round_nearest<Fp16>(float v) {
  const uint32_t b = float_bits(v);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const uint32_t mag = b & 0x7FFFFFFFu;
  // Results below 2^-14 are fp16 subnormals: adding 0.5 puts their 10 bits at the bottom of
  // an fp32 mantissa and the fp32 addition rounds them to nearest-even. (An fp32 subnormal
  // input is far below half the smallest fp16 subnormal, so flush-to-zero modes agree.)
  const uint32_t subnormal = float_bits(bits_float(mag) + 0.5f) - 0x3F000000u;
  // Normal results: rebias the exponent and round the 13 dropped bits to nearest-even; a carry
  // into the exponent is correct, up to overflow to inf.
  const uint32_t normal = (mag + 0xC8000FFFu + ((mag >> 13) & 1u)) >> 13;
  uint32_t out = mag < 0x38800000u ? subnormal : normal;
  out = mag >= 0x47800000u ? 0x7C00u : out;  // >= 65536: inf (65520 .. 65536 carry there too)
  return is_nan_fp32(b) ? canonical_nan<Fp16>() : (out | sign);
}

// ---- the random stream -------------------------------------------------------------------------
// A 32-bit integer mixer (xorshift-multiply, "lowbias32"): a bijection with good avalanche.
BK_INLINE uint32_t mix32(uint32_t x) {
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

// 32 random bits for element i of a stream.
BK_INLINE uint32_t element_random(uint32_t key, uint64_t i) {
  return mix32(key ^ mix32(uint32_t(i) ^ (uint32_t(i >> 32) * 0x9E3779B9u)));
}

// ---- stochastic rounding ---------------------------------------------------------------------
// Rounds v to one of its two neighbours in F with probabilities proportional to closeness, so
// the expected stored value is v. r: 32 random bits. fp32 results are already stored exactly.
template <class F>
BK_INLINE uint32_t round_stochastic(float v, uint32_t r);

template <>
BK_INLINE uint32_t round_stochastic<Fp32>(float v, uint32_t) {
  return round_nearest<Fp32>(v);
}

template <>
BK_INLINE uint32_t round_stochastic<Bf16>(float v, uint32_t r) {
  // bf16 keeps the top 16 bits of fp32 at every exponent (subnormals included): add 16 random
  // bits below the cut, then truncate. Carries into the exponent (and into inf) are exact.
  const uint32_t b = float_bits(v);
  const uint32_t rounded = (b + (r >> 16)) >> 16;
  return is_finite_bits<Fp32>(b) ? rounded : round_nearest<Bf16>(v);
}

template <>
BK_INLINE uint32_t round_stochastic<Fp16>(float v, uint32_t r) {
  const uint32_t b = float_bits(v);
  const uint32_t sign = b & 0x80000000u;
  const uint32_t mag = b & 0x7FFFFFFFu;
  // Normal fp16 range (|v| >= 2^-14): the fp16 grid keeps the top 10 of fp32's 23 mantissa
  // bits; add 13 random bits below the cut and truncate.
  const float on_grid_normal = bits_float(sign | ((mag + (r & 0x1FFFu)) & ~0x1FFFu));
  // Subnormal range: the grid is k * 2^-24. q = |v| * 2^24 is exact; round its fraction up
  // with probability frac using 24 random bits.
  const float q = bits_float(mag) * 16777216.0f;
  const float whole = float(uint32_t(q));  // q < 2^10: the conversion truncates exactly
  const float u = float(r >> 8) * 5.9604644775390625e-08f;  // uniform in [0, 1), step 2^-24
  const float up = u < q - whole ? 1.0f : 0.0f;
  const float on_grid_subnormal = bits_float(sign | float_bits((whole + up) * 5.9604644775390625e-08f));
  const float on_grid = mag < 0x38800000u ? on_grid_subnormal : on_grid_normal;
  // On the grid, nearest rounding is exact; above 65504 it gives inf (the next grid point).
  return is_finite_bits<Fp32>(b) ? round_nearest<Fp16>(on_grid) : round_nearest<Fp16>(v);
}

// ---- rounding mode as a compile-time choice ------------------------------------------------
enum class Rounding { kNearest = 0, kStochastic = 1 };

template <class F, Rounding kMode>
BK_INLINE uint32_t round_to(float v, uint32_t random_bits) {
  if (kMode == Rounding::kStochastic) return round_stochastic<F>(v, random_bits);
  return round_nearest<F>(v);
}

}  // namespace bitkernels
