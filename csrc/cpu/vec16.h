// 16-lane AVX-512 types for the lane code of formats.h, rounding.h and rules.h (see lanes.h):
// F32x16 (fp32 lanes), U32x16 (uint32 lanes) and Mask16 (a comparison's result, one bit per
// lane). Scalars convert implicitly (broadcast), so `v * 0.5f` and `bits >> 16` read as in the
// scalar code, and the helpers lane code calls (select, float_bits, sqrt_of, ...) are found by
// argument-dependent lookup. Compiled into namespace v4 only (see simd.h): no include guard, no
// includes; the includer provides <immintrin.h>.
//
// Comparisons follow C++ on floats: ordered, except != (true when either side is NaN).
//
// The types and their helpers live in namespace vec16, so that the helpers are reached only by
// argument-dependent lookup: declared in the kernels' namespace, they would hide the scalar
// float_bits & co. from the scalar loops there.
//
// They are namespace-scope `inline` functions, not always_inline and not friends or members
// defined in the class (GCC 12 compiles those without the region's target): the lane templates
// that call them (rules.h, ...) are defined for the baseline ISA, and GCC refuses to force an
// AVX-512 function into a baseline one. The kernel that runs them is `flatten` (step_avx512.h):
// once a lane template is inlined there, these inline into an AVX-512 function.
#define BK_VEC16_INLINE inline

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {
namespace vec16 {

struct Mask16 {
  __mmask16 k;
};

struct U32x16 {
  __m512i v;
  U32x16() = default;
  U32x16(uint32_t x);  // NOLINT: implicit, broadcasts
  explicit U32x16(__m512i x) : v(x) {}
};

struct F32x16 {
  __m512 v;
  F32x16() = default;
  F32x16(float x);  // NOLINT: implicit, broadcasts
  explicit F32x16(__m512 x) : v(x) {}
};

BK_VEC16_INLINE U32x16::U32x16(uint32_t x) : v(_mm512_set1_epi32(int(x))) {}
BK_VEC16_INLINE F32x16::F32x16(float x) : v(_mm512_set1_ps(x)) {}

BK_VEC16_INLINE Mask16 operator&(Mask16 a, Mask16 b) { return {__mmask16(a.k & b.k)}; }
BK_VEC16_INLINE Mask16 operator|(Mask16 a, Mask16 b) { return {__mmask16(a.k | b.k)}; }
BK_VEC16_INLINE Mask16 operator~(Mask16 a) { return {__mmask16(~a.k)}; }

BK_VEC16_INLINE U32x16 operator+(U32x16 a, U32x16 b) { return U32x16(_mm512_add_epi32(a.v, b.v)); }
BK_VEC16_INLINE U32x16 operator-(U32x16 a, U32x16 b) { return U32x16(_mm512_sub_epi32(a.v, b.v)); }
BK_VEC16_INLINE U32x16 operator*(U32x16 a, U32x16 b) {
  return U32x16(_mm512_mullo_epi32(a.v, b.v));
}
BK_VEC16_INLINE U32x16 operator&(U32x16 a, U32x16 b) { return U32x16(_mm512_and_si512(a.v, b.v)); }
BK_VEC16_INLINE U32x16 operator|(U32x16 a, U32x16 b) { return U32x16(_mm512_or_si512(a.v, b.v)); }
BK_VEC16_INLINE U32x16 operator^(U32x16 a, U32x16 b) { return U32x16(_mm512_xor_si512(a.v, b.v)); }
BK_VEC16_INLINE U32x16 operator~(U32x16 a) {
  return U32x16(_mm512_ternarylogic_epi32(a.v, a.v, a.v, 0x55));
}
BK_VEC16_INLINE U32x16 operator<<(U32x16 a, int n) {
  return U32x16(_mm512_slli_epi32(a.v, unsigned(n)));
}
BK_VEC16_INLINE U32x16 operator>>(U32x16 a, int n) {
  return U32x16(_mm512_srli_epi32(a.v, unsigned(n)));
}
BK_VEC16_INLINE U32x16& operator^=(U32x16& a, U32x16 b) { return a = a ^ b; }
BK_VEC16_INLINE U32x16& operator*=(U32x16& a, U32x16 b) { return a = a * b; }

BK_VEC16_INLINE Mask16 operator==(U32x16 a, U32x16 b) { return {_mm512_cmpeq_epu32_mask(a.v, b.v)}; }
BK_VEC16_INLINE Mask16 operator!=(U32x16 a, U32x16 b) { return {_mm512_cmpneq_epu32_mask(a.v, b.v)}; }
BK_VEC16_INLINE Mask16 operator<(U32x16 a, U32x16 b) { return {_mm512_cmplt_epu32_mask(a.v, b.v)}; }
BK_VEC16_INLINE Mask16 operator>(U32x16 a, U32x16 b) { return {_mm512_cmpgt_epu32_mask(a.v, b.v)}; }
BK_VEC16_INLINE Mask16 operator>=(U32x16 a, U32x16 b) { return {_mm512_cmpge_epu32_mask(a.v, b.v)}; }

BK_VEC16_INLINE F32x16 operator+(F32x16 a, F32x16 b) { return F32x16(_mm512_add_ps(a.v, b.v)); }
BK_VEC16_INLINE F32x16 operator-(F32x16 a, F32x16 b) { return F32x16(_mm512_sub_ps(a.v, b.v)); }
BK_VEC16_INLINE F32x16 operator*(F32x16 a, F32x16 b) { return F32x16(_mm512_mul_ps(a.v, b.v)); }
BK_VEC16_INLINE F32x16 operator/(F32x16 a, F32x16 b) { return F32x16(_mm512_div_ps(a.v, b.v)); }
BK_VEC16_INLINE F32x16 operator-(F32x16 a) {  // flips the sign bit, as C++ does
  return F32x16(_mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(int(0x80000000u)))));
}

BK_VEC16_INLINE Mask16 operator==(F32x16 a, F32x16 b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)};
}
BK_VEC16_INLINE Mask16 operator!=(F32x16 a, F32x16 b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_NEQ_UQ)};
}
BK_VEC16_INLINE Mask16 operator<(F32x16 a, F32x16 b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)};
}
BK_VEC16_INLINE Mask16 operator>(F32x16 a, F32x16 b) {
  return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)};
}

// ---- the lane helpers of lanes.h, formats.h and step.h -------------------------------------
BK_VEC16_INLINE F32x16 select(Mask16 c, F32x16 a, F32x16 b) {
  return F32x16(_mm512_mask_blend_ps(c.k, b.v, a.v));
}
BK_VEC16_INLINE U32x16 select(Mask16 c, U32x16 a, U32x16 b) {
  return U32x16(_mm512_mask_blend_epi32(c.k, b.v, a.v));
}
// rules.h's pick (a bitwise blend by a hyper-parameter's mask) in one instruction.
BK_VEC16_INLINE F32x16 pick(Flag f, F32x16 if_set, F32x16 if_clear) {
  return F32x16(_mm512_castsi512_ps(_mm512_ternarylogic_epi32(
      _mm512_set1_epi32(int(f.mask)), _mm512_castps_si512(if_set.v),
      _mm512_castps_si512(if_clear.v), 0xCA)));
}
BK_VEC16_INLINE U32x16 float_bits(F32x16 x) { return U32x16(_mm512_castps_si512(x.v)); }
BK_VEC16_INLINE F32x16 bits_float(U32x16 x) { return F32x16(_mm512_castsi512_ps(x.v)); }
BK_VEC16_INLINE F32x16 sqrt_of(F32x16 x) { return F32x16(_mm512_sqrt_ps(x.v)); }
BK_VEC16_INLINE F32x16 to_f32(U32x16 x) { return F32x16(_mm512_cvtepu32_ps(x.v)); }
BK_VEC16_INLINE U32x16 to_u32(F32x16 x) { return U32x16(_mm512_cvttps_epu32(x.v)); }
BK_VEC16_INLINE F32x16 load_like(F32x16, const float* x) { return F32x16(_mm512_loadu_ps(x)); }

// rounding.h's round_nearest for 16 lanes (found by argument-dependent lookup, preferred as the
// more specialized template). fp32: one unordered compare finds the NaNs. fp16 by the hardware
// conversion, which rounds to nearest-even with
// subnormals and overflow to inf exactly as the generic code does, NaN made canonical after; the
// kernels do not run it under denormals-are-zero (see kDenormalsAreZero). Other formats: the
// generic code.
template <class F>
BK_VEC16_INLINE U32x16 round_nearest(F32x16 v) {
  if constexpr (F::kWidth == 32) {  // the value itself, NaN made canonical
    const __mmask16 nan = _mm512_cmp_ps_mask(v.v, v.v, _CMP_UNORD_Q);
    return U32x16(_mm512_mask_mov_epi32(_mm512_castps_si512(v.v), nan,
                                        _mm512_set1_epi32(int(canonical_nan<F>()))));
  } else if constexpr (F::kWidth == 16 && F::kExponent == 5) {
    const __m512i half = _mm512_cvtepu16_epi32(
        _mm512_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __mmask16 nan = _mm512_cmp_ps_mask(v.v, v.v, _CMP_UNORD_Q);
    return U32x16(_mm512_mask_mov_epi32(half, nan, _mm512_set1_epi32(int(canonical_nan<F>()))));
  } else {
    return ::bitkernels::round_nearest<F>(v);
  }
}
BK_VEC16_INLINE void store_lanes(float* x, F32x16 v) { _mm512_storeu_ps(x, v.v); }

// rules.h's decoupled_decay_term in two instructions where the generic code takes three (p - p,
// the comparison, a masked product): the product, then vfixupimm, which by p's class keeps it or
// writes +0, here for +-inf and NaN. Preferred to the template as a non-template.
BK_VEC16_INLINE F32x16 decoupled_decay_term(float neg_lr_weight_decay, F32x16 p) {
  // One 4-bit token per class of p: QNaN, SNaN, zero, +1, -inf, +inf, negative, positive;
  // 8 writes +0, 0 keeps the product.
  const __m512i zero_if_not_finite = _mm512_set1_epi32(0x00880088);
  const __m512 product = _mm512_mul_ps(_mm512_set1_ps(neg_lr_weight_decay), p.v);
  return F32x16(_mm512_fixupimm_ps(product, p.v, zero_if_not_finite, 0));
}

}  // namespace vec16

using vec16::F32x16;
using vec16::Mask16;
using vec16::U32x16;

// ---- stored words <-> 32-bit lanes ---------------------------------------------------------
template <class F>
BK_ALWAYS_INLINE U32x16 load_stored16(const typename F::bits_t* x) {
  if constexpr (F::kWidth == 32) {
    return U32x16(_mm512_loadu_si512(x));
  } else {
    return U32x16(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))));
  }
}

template <class F>
BK_ALWAYS_INLINE void store_stored16(typename F::bits_t* x, U32x16 bits) {
  if constexpr (F::kWidth == 32) {
    _mm512_storeu_si512(x, bits.v);
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x), _mm512_cvtepi32_epi16(bits.v));
  }
}

// Words kFirst .. kFirst + 15 of 32 bf16 words, widened to fp32 lanes: each moved to the high
// half of its lane, zeros below. One permutation (port 5) where zero-extension and a shift take
// two instructions (ports 5 and 0), and the two ports are what the statistics compete for.
template <int kFirst>
BK_ALWAYS_INLINE F32x16 widen_bf16_words(__m512i words) {
  constexpr short k = kFirst;
  const __m512i high_halves =
      _mm512_set_epi16(k + 15, 0, k + 14, 0, k + 13, 0, k + 12, 0, k + 11, 0, k + 10, 0, k + 9, 0,
                       k + 8, 0, k + 7, 0, k + 6, 0, k + 5, 0, k + 4, 0, k + 3, 0, k + 2, 0,
                       k + 1, 0, k, 0);
  return F32x16(_mm512_castsi512_ps(
      _mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, high_halves, words)));
}

// 16 stored values widened exactly to fp32 lanes, each format in the fewest instructions.
template <class F>
BK_ALWAYS_INLINE F32x16 load_widened16(const typename F::bits_t* x) {
  if constexpr (F::kWidth == 32) {
    return F32x16(_mm512_loadu_ps(reinterpret_cast<const float*>(x)));
  } else {
    const __m256i words = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    if constexpr (F::kExponent == 5) {
      return F32x16(_mm512_cvtph_ps(words));
    } else {
      static_assert(F::kExponent == 8, "bf16");
      return widen_bf16_words<0>(_mm512_castsi256_si512(words));
    }
  }
}

// Stored bits (zero-extended lanes) widened exactly to fp32; fp16 by the hardware conversion,
// which is exact, subnormals included, and gives the same bits as widen_lanes<Fp16>.
template <class F>
BK_ALWAYS_INLINE F32x16 widen16(U32x16 bits) {
  if constexpr (F::kWidth == 16 && F::kExponent == 5) {
    return F32x16(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(bits.v)));
  } else {
    return to_float<F>(bits);
  }
}

// AVX512-BF16's conversion of two vectors: 32 bf16 words, lo's lanes then hi's (memory order
// for lo the lower addresses), rounded to nearest-even as round_nearest<Bf16> does, except two
// classes of input: NaNs keep their payload, and fp32 subnormals become zeros (the instruction
// reads them as zero). Callers fix those lanes up. Inline assembly, not the intrinsic: the v4
// kernels are compiled for x86-64-v4, which has no AVX512-BF16, and call this only where the
// CPU has it (Isa::kX86_64_V4Bf16).
BK_ALWAYS_INLINE __m512i convert_pair_bf16(F32x16 lo, F32x16 hi) {
  __m512i words;
  asm("vcvtne2ps2bf16 %2, %1, %0" : "=v"(words) : "v"(hi.v), "v"(lo.v));
  return words;
}

// The stochastic-rounding bits of elements i .. i + 15 (element_random of each).
BK_ALWAYS_INLINE U32x16 element_random16(uint32_t key, uint64_t i) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const U32x16 low(_mm512_add_epi32(_mm512_set1_epi32(int(uint32_t(i))), lanes));
  // A lane whose low half wrapped past 2^32 carries into the high half.
  const __mmask16 wrapped = _mm512_cmplt_epu32_mask(low.v, _mm512_set1_epi32(int(uint32_t(i))));
  const U32x16 high(_mm512_mask_add_epi32(_mm512_set1_epi32(int(uint32_t(i >> 32))), wrapped,
                                          _mm512_set1_epi32(int(uint32_t(i >> 32))),
                                          _mm512_set1_epi32(1)));
  return element_random_halves(key, low, high);
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
