// Stored floating-point formats as bit patterns.
//
// Every statistic is defined on the stored bits, so the core never asks a compiler to do
// arithmetic in bf16/fp16: values are bits (unsigned integers of the format's width) and are
// widened to fp32 exactly when arithmetic is needed. Classification (zero, finite, exponent)
// is done on bits too, which keeps it exact under flush-to-zero / denormals-are-zero modes.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "bitkernels/lanes.h"
#include "bitkernels/macros.h"

namespace bitkernels {

struct Fp32 {
  using bits_t = uint32_t;
  static constexpr int kWidth = 32;
  static constexpr int kMantissa = 23;  // p: stored mantissa bits
  static constexpr int kExponent = 8;
  static constexpr int kBias = 127;
};

struct Bf16 {
  using bits_t = uint16_t;
  static constexpr int kWidth = 16;
  static constexpr int kMantissa = 7;
  static constexpr int kExponent = 8;
  static constexpr int kBias = 127;
};

struct Fp16 {
  using bits_t = uint16_t;
  static constexpr int kWidth = 16;
  static constexpr int kMantissa = 10;
  static constexpr int kExponent = 5;
  static constexpr int kBias = 15;
};

// Stand-in exponent for ulp(inf) and ulp(NaN): large enough that any finite update measured
// against it falls below the lowest depth bin.
constexpr int kNonfiniteUlpExponent = 1 << 20;

BK_INLINE uint32_t float_bits(float v) {
#if BK_DEVICE_CODE && defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
#endif
}

BK_INLINE float bits_float(uint32_t b) {
#if BK_DEVICE_CODE && defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
#endif
}

// Lane code (see lanes.h): U is uint32_t or a vector of uint32 lanes.
template <class F, class U>
BK_INLINE U exponent_field(U bits) {
  return (bits >> F::kMantissa) & ((1u << F::kExponent) - 1u);
}

template <class F, class U>
BK_INLINE auto is_finite_bits(U bits) {
  return exponent_field<F>(bits) != (1u << F::kExponent) - 1u;
}

// Functions below are single expressions of selects (no early returns) so that compilers can
// vectorize loops that call them.

// log2 of ulp(x) for x stored in format F: 2^(floor(log2|x|) - p) for normal x, the smallest
// subnormal for zero and subnormals, kNonfiniteUlpExponent for inf and NaN.
template <class F>
BK_INLINE int ulp_exponent(uint32_t bits) {
  const uint32_t e = exponent_field<F>(bits);
  const int finite = int(e == 0u ? 1u : e) - F::kBias - F::kMantissa;
  return e == (1u << F::kExponent) - 1u ? kNonfiniteUlpExponent : finite;
}

// floor(log2|v|) for finite nonzero fp32 v given its bits. Subnormals are handled in integers
// (their mantissa converts to a normal fp32 exactly), so the answer does not depend on the
// floating-point environment.
BK_INLINE int floor_log2_fp32(uint32_t bits) {
  const uint32_t e = exponent_field<Fp32>(bits);
  const uint32_t mantissa_as_float = float_bits(float(bits & 0x7FFFFFu));
  const int subnormal = int(exponent_field<Fp32>(mantissa_as_float)) - Fp32::kBias - 149;
  return e != 0u ? int(e) - Fp32::kBias : subnormal;
}

// Exact widening of stored bits (zero-extended to 32-bit lanes) to fp32. Lane code.
template <class F, class U>
BK_INLINE auto widen_lanes(U bits) {
  if constexpr (F::kWidth == 32) {
    return bits_float(bits);
  } else if constexpr (F::kExponent == 8) {  // bf16: the top half of an fp32
    return bits_float(bits << 16);
  } else {  // fp16
    const U sign = (bits & 0x8000u) << 16;
    const U e = (bits >> 10) & 0x1Fu;
    const U m = bits & 0x3FFu;
    // zero and subnormals: m * 2^-24, exact in fp32 and computed without fp32 subnormals
    const U subnormal = float_bits(to_f32(m) * 5.9604644775390625e-08f) | sign;
    const U inf_nan = sign | 0x7F800000u | (m << 13);
    const U normal = sign | ((e + 112u) << 23) | (m << 13);
    return bits_float(select(e == 0u, subnormal, select(e == 0x1Fu, inf_nan, normal)));
  }
}

// to_float<F>(bits): stored bits of any unsigned integer type, or lanes.
template <class F, class U>
BK_INLINE auto to_float(U bits) {
  if constexpr (std::is_integral<U>::value) {
    return widen_lanes<F>(uint32_t(bits));
  } else {
    return widen_lanes<F>(bits);
  }
}

}  // namespace bitkernels
