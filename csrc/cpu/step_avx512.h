// The fused optimizer loop with AVX-512: 16 elements per vector, the update rule of rules.h
// instantiated for 16 lanes (vec16.h), each vector's statistics (stats_avx512.h) taken beside
// the next vector's update, in groups of 16 vectors. Compiled into namespace v4 only (see
// simd.h): no include guard, no includes.
//
// Why this shape: the update is bound by the divider (two divisions and a square root per
// element for Adam) and the step by memory; the statistics fit beside both only when they are
// interleaved with the update vector by vector, and the loads are prefetched far enough ahead
// that the memory stays busy while the core counts. Measured on 16M fp32 parameters against
// torch's fused AdamW: in two passes (update a block, then count it) the same work took 1.3 to
// 1.5x; interleaved without prefetching 1.3x; interleaved and prefetched about 1.0x
// (bench/RESULTS.md).
//
// Each pair of vectors' intended update is computed one pair ahead of its landing and counting.
// Landing and counting a pair take ~60 vector instructions that need the update, which comes
// out of the divider last. Issued right behind the update, they waited ~80 cycles in the
// scheduler (64 entries for vector instructions on AMD Zen 4; llvm-mca's model) and kept the
// next pair's divisions out of sight. One pair ahead, their inputs are ready when they issue.
// AdamW with statistics, data in L2, one thread, Zen 4: 11.1 -> 9.8 ns per vector of bf16,
// 10.7 -> 9.4 of fp32 (bench/RESULTS.md).

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

// The stored words of a pair of vectors of a 16-bit format (zero-extended lanes), in memory
// order: word k of the result is word 2k of the pair (the low half of lane k of a, then of b).
BK_ALWAYS_INLINE __m512i pack_pair(__m512i a, __m512i b) {
  const __m512i even_words = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38,
                                              36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12,
                                              10, 8, 6, 4, 2, 0);
  return _mm512_permutex2var_epi16(a, even_words, b);
}

// Whether a step rounds its pairs of vectors with AVX512-BF16's conversion (kConvertBf16): bf16
// to nearest, without Kahan (whose compensation needs each vector's bits on its own). One
// conversion, with a class test of its inputs, replaces 16 integer instructions and pack_pair:
// bf16 steps with statistics are bound by the core's work, not the memory (bench/RESULTS.md).
template <class F, Rounding kMode, bool kKahan>
constexpr bool kConvertsPairs =
    F::kWidth == 16 && F::kExponent == 8 && kMode == Rounding::kNearest && !kKahan;

// Steps the whole groups of 256 elements of [begin, end) and returns where it stopped; the
// caller steps the rest. Bit for bit the same parameters, states and counters as the scalar
// loop (step_impl.h).
template <class F, Rounding kMode, bool kKahan, bool kTrack, bool kConvertBf16, class Element>
__attribute__((flatten)) int64_t step_groups_avx512_impl(const Element& rule, const StepTensor& t,
                                                         int64_t begin, int64_t end,
                                                         const float* grad_scale, Partial& out) {
  using bits_t = typename F::bits_t;
  constexpr int kGroup = VectorStats<F>::kGroup;
  constexpr bool kPacked = VectorStats<F>::kPacked;
  static_assert(!kConvertBf16 || kConvertsPairs<F, kMode, kKahan>, "a bf16 step to nearest");
  // Local copies: hyper-parameters and pointers the compiler must not reload after every store.
  const Element element = rule;
  auto* const param = static_cast<bits_t*>(t.param);
  const auto* const grad = static_cast<const bits_t*>(t.grad);
  auto* const comp = static_cast<bits_t*>(t.comp);
  const float* const states[3] = {t.state[0], t.state[1], t.state[2]};
  const uint32_t key = t.rng_key;
  const GradUnscale unscale = GradUnscale::of(grad_scale);
  auto prefetch_vector = [&](int64_t i) BK_ALWAYS_INLINE_LAMBDA {
    prefetch_ahead(param, i, sizeof(bits_t));
    prefetch_ahead(grad, i, sizeof(bits_t));
    if constexpr (kKahan) prefetch_ahead(comp, i, sizeof(bits_t));
    for (int s = 0; s < Element::kStates; ++s) prefetch_ahead(states[s], i, sizeof(float));
  };
  // The intended update of the vector at i (its state written, its parameter not yet).
  auto update_at = [&](int64_t i) BK_ALWAYS_INLINE_LAMBDA {
    return element(i, load_widened16<F>(param + i), unscale(load_widened16<F>(grad + i)));
  };
  VectorStats<F> stats;
  VectorSums sums = stats.start(grad_scale != nullptr ? *grad_scale : 1.0f);
  const int64_t groups_end = begin + (end - begin) / kGroup * kGroup;
  F32x16 ahead_even = 0.0f, ahead_odd = 0.0f;  // the updates of the next pair to land
  if (groups_end > begin) {
    ahead_even = update_at(begin);
    ahead_odd = update_at(begin + 16);
  }
  int64_t b0 = begin;
  for (; b0 < groups_end; b0 += kGroup) {
    // A vector is counted one vector later, beside the next vector's landing: its values are
    // ready by then. Two vectors per iteration: 16-bit formats store (and count the flips of) a
    // pair at once.
    VectorValues pending;
    __m512i old_pair, new_even;  // kPacked: the pair's stored words before, the first's after
    F32x16 sum_even;             // kConvertBf16: the first's p + d
    // Lands vector v of the group, whose intended update is d, and counts the one before it.
    auto step_vector = [&](int v, auto odd, F32x16 d) BK_ALWAYS_INLINE_LAMBDA {
      constexpr bool kOdd = decltype(odd)::value;
      const int64_t i = b0 + 16 * v;
      prefetch_vector(i);
      // kPacked: the pair's stored words are loaded whole for its flips, and each vector's half
      // again as widened lanes: a widening load from L1 costs less than widening them out of
      // old_pair.
      if constexpr (kPacked && !kOdd) old_pair = _mm512_loadu_si512(param + i);
      const F32x16 p = load_widened16<F>(param + i);
      // For the statistics only, and as stored: loaded again rather than carried from update_at
      // (two more live vectors cost more than the load), and with grad_scale not divided again
      // (the sums scale it back, see VectorStats::start).
      const F32x16 g = load_widened16<F>(grad + i);
      U32x16 new_bits;  // not kConvertBf16
      F32x16 q = p;     // the new value; kConvertBf16 and even: set by the odd vector
      F32x16 applied = d;  // the update rounded in (with Kahan: d + compensation)
      __m512i pair_flips = _mm512_setzero_si512();
      if constexpr (kConvertBf16) {
        const F32x16 sum = p + d;  // land() without Kahan
        if constexpr (!kOdd) {
          sum_even = sum;
        } else {
          __m512i pair = convert_pair_bf16(sum_even, sum);
          constexpr int kNanOrSubnormal = 0xA1;  // fpclass: QNaN, subnormal, SNaN
          const __mmask16 even_special = _mm512_fpclass_ps_mask(sum_even.v, kNanOrSubnormal);
          const __mmask16 odd_special = _mm512_fpclass_ps_mask(sum.v, kNanOrSubnormal);
          if (__builtin_expect(!_kortestz_mask16_u8(even_special, odd_special), 0))
            pair = pack_pair(round_nearest<F>(sum_even).v, round_nearest<F>(sum).v);
          _mm512_storeu_si512(param + i - 16, pair);
          pair_flips = _mm512_xor_si512(pair, old_pair);
          if constexpr (kTrack) pending.q = widen_bf16_words<0>(pair);
          q = widen_bf16_words<16>(pair);
        }
      } else {
        const U32x16 random_bits =
            kMode == Rounding::kStochastic ? element_random16(key, uint64_t(i)) : U32x16(0u);
        const U32x16 comp_bits = kKahan ? load_stored16<F>(comp + i) : U32x16(0u);
        const auto landed = land<F, kMode, kKahan>(p, d, comp_bits, random_bits);
        new_bits = landed.new_bits;
        q = widen16<F>(new_bits);
        applied = landed.d;
        if constexpr (!kPacked) {
          store_stored16<F>(param + i, new_bits);
        } else if constexpr (!kOdd) {
          new_even = new_bits.v;
        } else {
          const __m512i pair = pack_pair(new_even, new_bits.v);
          _mm512_storeu_si512(param + i - 16, pair);
          pair_flips = _mm512_xor_si512(pair, old_pair);
        }
        if constexpr (kKahan) store_stored16<F>(comp + i, landed.comp_bits);
      }
      if constexpr (kTrack) {
        if (v > 0) stats.template add<!kOdd>(v - 1, pending, sums);
        // The stored bits before and after: fp32 only (16-bit formats count pair_flips).
        const U32x16 old_bits = kPacked ? U32x16(0u) : float_bits(p);
        pending = {old_bits, kPacked ? U32x16(0u) : new_bits, q, p, applied, g, pair_flips};
      }
    };
    for (int v = 0; v < kGroup / 16; v += 2) {
      const int64_t next = b0 + 16 * v + 32;
      F32x16 next_even = 0.0f, next_odd = 0.0f;
      if (next < groups_end) {
        next_even = update_at(next);
        next_odd = update_at(next + 16);
      }
      step_vector(v, std::false_type(), ahead_even);
      step_vector(v + 1, std::true_type(), ahead_odd);
      ahead_even = next_even;
      ahead_odd = next_odd;
    }
    if constexpr (kTrack) {
      stats.template add<true>(kGroup / 16 - 1, pending, sums);
      auto grad_at = [&](int j) { return unscale(to_float<F>(grad[b0 + j])); };
      VectorStats<F>::prefetch_next_group(b0 + kGroup, prefetch_vector);
      stats.end_group(param + b0, grad_at, sums, out);
    }
  }
  if constexpr (kTrack) stats.finish(sums, out);
  return b0;
}

// The above with the fastest rounding this CPU has.
template <class F, Rounding kMode, bool kKahan, bool kTrack, class Element>
int64_t step_groups_avx512(const Element& rule, const StepTensor& t, int64_t begin, int64_t end,
                           const float* grad_scale, Partial& out) {
  if constexpr (kConvertsPairs<F, kMode, kKahan>) {
    if (active_isa() == Isa::kX86_64_V4Bf16)
      return step_groups_avx512_impl<F, kMode, kKahan, kTrack, true>(rule, t, begin, end,
                                                                      grad_scale, out);
  }
  return step_groups_avx512_impl<F, kMode, kKahan, kTrack, false>(rule, t, begin, end, grad_scale,
                                                                   out);
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
