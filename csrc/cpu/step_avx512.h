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

// Steps the whole groups of 256 elements of [begin, end) and returns where it stopped; the
// caller steps the rest. Bit for bit the same parameters, states and counters as the scalar
// loop (step_impl.h).
template <class F, Rounding kMode, bool kKahan, bool kTrack, class Element>
__attribute__((flatten)) int64_t step_groups_avx512(const Element& rule, const StepTensor& t,
                                                    int64_t begin, int64_t end,
                                                    const float* grad_scale, Partial& out) {
  using bits_t = typename F::bits_t;
  constexpr int kGroup = VectorStats<F>::kGroup;
  constexpr bool kPacked = VectorStats<F>::kPacked;
  // Local copies: hyper-parameters and pointers the compiler must not reload after every store.
  const Element element = rule;
  auto* const param = static_cast<bits_t*>(t.param);
  const auto* const grad = static_cast<const bits_t*>(t.grad);
  auto* const comp = static_cast<bits_t*>(t.comp);
  const float* const states[3] = {t.state[0], t.state[1], t.state[2]};
  const uint32_t key = t.rng_key;
  const bool scaled = grad_scale != nullptr;
  const float scale = scaled ? *grad_scale : 1.0f;
  auto gradient = [&](U32x16 bits) BK_ALWAYS_INLINE_LAMBDA {
    const F32x16 g = widen16<F>(bits);
    return scaled ? g / scale : g;  // x / 1 is exact, but a division is not free
  };
  VectorStats<F> stats;
  VectorSums sums = VectorStats<F>::start();
  int64_t b0 = begin;
  for (; b0 + kGroup <= end; b0 += kGroup) {
    // A vector is counted one vector later, beside the next update: its values are ready by
    // then, and the counting does not wait in the scheduler behind the divisions. Two vectors
    // per iteration: 16-bit formats store (and count the flips of) a pair at once.
    VectorValues pending;
    __m512i old_pair, new_even;  // kPacked: the pair's stored words before, the first's after
    auto step_vector = [&](int v, auto odd) BK_ALWAYS_INLINE_LAMBDA {
      constexpr bool kOdd = decltype(odd)::value;
      const int64_t i = b0 + 16 * v;
      prefetch_ahead(param, i, sizeof(bits_t));
      prefetch_ahead(grad, i, sizeof(bits_t));
      prefetch_ahead(comp, i, sizeof(bits_t));
      for (const float* state : states) prefetch_ahead(state, i, sizeof(float));
      // kPacked: the pair's stored words are loaded whole for its flips, and each vector's half
      // again as widened lanes: a widening load from L1 costs less than widening them out of
      // old_pair (the odd vector's half would need an extraction too).
      if constexpr (kPacked && !kOdd) old_pair = _mm512_loadu_si512(param + i);
      const U32x16 old_bits = load_stored16<F>(param + i);
      const F32x16 p = widen16<F>(old_bits);
      const F32x16 g = gradient(load_stored16<F>(grad + i));
      const F32x16 d = element(i, p, g);
      const U32x16 random_bits =
          kMode == Rounding::kStochastic ? element_random16(key, uint64_t(i)) : U32x16(0u);
      const U32x16 comp_bits = kKahan ? load_stored16<F>(comp + i) : U32x16(0u);
      const auto landed = land<F, kMode, kKahan>(p, d, comp_bits, random_bits);
      __m512i pair_flips = _mm512_setzero_si512();
      if constexpr (!kPacked) {
        store_stored16<F>(param + i, landed.new_bits);
      } else if constexpr (!kOdd) {
        new_even = landed.new_bits.v;
      } else {
        const __m512i pair = pack_pair(new_even, landed.new_bits.v);
        _mm512_storeu_si512(param + i - 16, pair);
        pair_flips = _mm512_xor_si512(pair, old_pair);
      }
      if constexpr (kKahan) store_stored16<F>(comp + i, landed.comp_bits);
      if constexpr (kTrack) {
        if (v > 0) stats.template add<!kOdd>(v - 1, pending, sums);
        pending = {old_bits, landed.new_bits, p, landed.d, g, pair_flips};
      }
    };
    for (int v = 0; v < kGroup / 16; v += 2) {
      step_vector(v, std::false_type());
      step_vector(v + 1, std::true_type());
    }
    if constexpr (kTrack) {
      stats.template add<true>(kGroup / 16 - 1, pending, sums);
      auto grad_at = [&](int j) {
        const float g = to_float<F>(grad[b0 + j]);
        return scaled ? g / scale : g;
      };
      stats.end_group(param + b0, grad_at, sums, out);
    }
  }
  if constexpr (kTrack) stats.finish(sums, out);
  return b0;
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
