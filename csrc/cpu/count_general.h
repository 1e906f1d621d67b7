// The general path of the CPU statistics, compiled once per ISA (see simd.h): no include guard,
// no includes; the includer provides stats_block.h first. The block loops of the steps
// (step_impl.h) and of bitflip_stats (bitflip_stats_impl.h) count with it what the vector paths
// do not: every element below AVX2, the elements with values the AVX2 groups (stats_avx2.h) do
// not count, and everything under denormals-are-zero.

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

// Elements begin .. end - 1 of a block, element_at(j) giving element j's ElementStats, every
// rule of the contract applied element by element. One vectorized loop writes class codes (and
// with kStoreFlips the flip masks, for a PositionCounter) and reduces the sums.
template <bool kStoreFlips, class ElementAt>
BK_ALWAYS_INLINE void count_elements(StatsBlock& block, int begin, int end,
                                     const ElementAt& element_at, Partial& out) {
  for (int s0 = begin; s0 < end; s0 += kSumSpan) {
    const int s1 = std::min(end, s0 + kSumSpan);
    float d2 = 0, g2 = 0, p2 = 0, r2 = 0;  // see kSquareScale
#pragma omp simd reduction(+ : d2, g2, p2, r2)
    for (int j = s0; j < s1; ++j) {
      const stats::ElementStats e = element_at(j);
      if constexpr (kStoreFlips) block.flip[j] = e.flip_mask;
      block.code[j] = class_code(e);
      d2 += scaled_square(e.d), g2 += scaled_square(e.g);
      p2 += scaled_square(e.p), r2 += scaled_square(e.q - e.p);
    }
    if (finite_sums(d2, g2, p2, r2)) {
      add_sums(out, d2, g2, p2, r2);
    } else {
      exact_sums(s0, s1, element_at, out);
    }
  }
  block.count_codes(begin, end);
}

// Elements begin .. end - 1 of a block whose loop has filled block.flip, d_bits and g (param:
// the new stored values of the block's element 0 onward). One vectorized loop over the
// L1-resident buffers (in one loop with the update, the live values outgrow the 16 vector
// registers and GCC spills or stops vectorizing). Flips are counted apart.
template <class F>
BK_ALWAYS_INLINE void count_general(StatsBlock& block, const typename F::bits_t* param, int begin,
                                    int end, Partial& out) {
  auto element_at = [&](int j) {
    const uint32_t new_bits = param[j];
    return stats::element_stats<F>(new_bits ^ block.flip[j], new_bits, block.d_bits[j],
                                   block.g[j]);
  };
  count_elements<false>(block, begin, end, element_at, out);
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
