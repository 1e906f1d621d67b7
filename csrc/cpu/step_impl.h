// The fused optimizer loop on the CPU, compiled once per ISA (see simd.h): no include guard, no
// includes; step_kernels.h includes what this needs first.
//
// step_range applies one update rule to elements [begin, end) of one tensor, block by block:
// a vectorized (omp simd) pass reads param, grad and state once, writes param and state, and
// reduces the statistics of every element (scalars in registers, flip masks and depth bins into
// an L1-resident StatsBlock that is counted right after). With kTrack false the statistics are
// compiled out.

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

template <class F, Rounding kMode, bool kKahan, bool kTrack, class Element>
void step_range(const Element& rule, const StepTensor& t, int64_t begin, int64_t end,
                const float* grad_scale, Partial& out) {
  using bits_t = typename F::bits_t;
  // A local copy: the state pointers inside must be registers, not memory the stores of the
  // loop might (for the compiler) overwrite.
  const Element element = rule;
  auto* param = static_cast<bits_t*>(t.param);
  const auto* grad = static_cast<const bits_t*>(t.grad);
  auto* comp = static_cast<bits_t*>(t.comp);
  // x / 1 is exact: without AMP the division changes nothing and keeps the loop branch-free.
  const float scale = grad_scale != nullptr ? *grad_scale : 1.0f;
  const uint32_t key = t.rng_key;
  StatsBlock block;
  for (int64_t b0 = begin; b0 < end; b0 += StatsBlock::kBlock) {
    const int n = int(std::min<int64_t>(StatsBlock::kBlock, end - b0));
    uint32_t changed = 0, lost = 0, zero = 0, nonfinite = 0;
    float d2 = 0, g2 = 0, p2 = 0, r2 = 0;  // see kSquareScale
#pragma omp simd reduction(+ : changed, lost, zero, nonfinite, d2, g2, p2, r2)
    for (int j = 0; j < n; ++j) {
      const int64_t i = b0 + j;
      const uint32_t old_bits = param[i];
      const float p = to_float<F>(old_bits);
      const float g = to_float<F>(grad[i]) / scale;  // unscaled exactly as torch does
      const float d = element(i, p, g);
      const uint32_t random_bits =
          kMode == Rounding::kStochastic ? element_random(key, uint64_t(i)) : 0u;
      const Landed landed =
          land<F, kMode, kKahan>(p, d, kKahan ? uint32_t(comp[i]) : 0u, random_bits);
      param[i] = bits_t(landed.new_bits);
      if constexpr (kKahan) comp[i] = bits_t(landed.comp_bits);
      if constexpr (kTrack) {
        const stats::ElementStats e =
            stats::element_stats<F>(old_bits, landed.new_bits, float_bits(landed.d), g);
        block.flip[j] = e.flip_mask;
        block.bin[j] = uint32_t(e.depth_bin);
        block.d_bits[j] = float_bits(landed.d);
        changed += e.changed, lost += e.lost, zero += e.zero, nonfinite += e.nonfinite;
        d2 += scaled_square(e.d), g2 += scaled_square(e.g);
        p2 += scaled_square(e.p), r2 += scaled_square(e.q - e.p);
      }
    }
    if constexpr (kTrack) {
      block.flush(n, out);
      if (finite_sums(d2, g2, p2, r2)) {
        add_scalars(out, changed, lost, zero, nonfinite, d2, g2, p2, r2);
      } else {  // rebuild the block's elements from what is still in memory
        add_scalars(out, changed, lost, zero, nonfinite, 0.0f, 0.0f, 0.0f, 0.0f);
        exact_sums(n, [&](int j) {
          const uint32_t new_bits = param[b0 + j];
          return stats::element_stats<F>(new_bits ^ block.flip[j], new_bits, block.d_bits[j],
                                         to_float<F>(grad[b0 + j]) / scale);
        }, out);
      }
    }
  }
  if constexpr (kTrack) block.finish(out);
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
