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

// Steps the whole groups of 256 elements of [begin, end) and returns where it stopped; the
// caller steps the rest. Bit for bit the same parameters, states and counters as the scalar
// loop (step_impl.h).
template <class F, Rounding kMode, bool kKahan, bool kTrack, class Element>
__attribute__((flatten)) int64_t step_groups_avx512(const Element& rule, const StepTensor& t,
                                                    int64_t begin, int64_t end,
                                                    const float* grad_scale, Partial& out) {
  using bits_t = typename F::bits_t;
  constexpr int kGroup = VectorStats<F>::kGroup;
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
    // then, and the counting does not wait in the scheduler behind the divisions.
    VectorValues pending;
    for (int v = 0; v < kGroup / 16; ++v) {
      const int64_t i = b0 + 16 * v;
      prefetch_ahead(param, i, sizeof(bits_t));
      prefetch_ahead(grad, i, sizeof(bits_t));
      prefetch_ahead(comp, i, sizeof(bits_t));
      for (const float* state : states) prefetch_ahead(state, i, sizeof(float));
      const U32x16 old_bits = load_stored16<F>(param + i);
      const F32x16 p = widen16<F>(old_bits);
      const F32x16 g = gradient(load_stored16<F>(grad + i));
      const F32x16 d = element(i, p, g);
      const U32x16 random_bits =
          kMode == Rounding::kStochastic ? element_random16(key, uint64_t(i)) : U32x16(0u);
      const U32x16 comp_bits = kKahan ? load_stored16<F>(comp + i) : U32x16(0u);
      const auto landed = land<F, kMode, kKahan>(p, d, comp_bits, random_bits);
      store_stored16<F>(param + i, landed.new_bits);
      if constexpr (kKahan) store_stored16<F>(comp + i, landed.comp_bits);
      if constexpr (kTrack) {
        if (v > 0) stats.add(v - 1, pending, sums);
        pending = {old_bits, landed.new_bits, p, landed.d, g};
      }
    }
    if constexpr (kTrack) {
      stats.add(kGroup / 16 - 1, pending, sums);
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
