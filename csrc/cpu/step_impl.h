// The fused optimizer loop on the CPU, compiled once per ISA (for_each_isa.h, from
// step_loops.h): no include guard; step_loops.h includes the guarded headers this needs first.
//
// step_range applies one update rule to elements [begin, end) of one tensor. With AVX-512
// (namespace v4) the whole 256-element groups go through the fused kernel of step_avx512.h
// and only the rest through namespace v3's loop here, block by block: a vectorized (omp simd)
// pass reads param, grad and state once from memory and writes param and state; with
// statistics it also leaves each element's flip mask, update and gradient in the L1-resident
// StatsBlock. With AVX2 they are counted every 128 elements (GroupStats, stats_avx2.h;
// count_general where the fast path does not apply); without, after each block. With kTrack
// false the statistics are compiled out.

#include "stats_isa.h"
#if BK_ISA_AVX512
#include "step_avx512.h"
#endif

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

// Elements [b0, end) block by block (see the top of this file). kDivide: the gradients are
// divided by `unscale`, else multiplied (GradUnscale; 1 without AMP). Two instantiations rather
// than a branch in the vectorized loop: GCC 12 unswitches that loop for some rules and formats,
// and for others (bf16 AdamW, x86-64-v3) computes both and blends.
template <class F, Rounding kMode, bool kKahan, bool kTrack, bool kDivide, class Element>
void step_blocks(const Element& rule, const StepTensor& t, int64_t b0, int64_t end,
                 float unscale, Partial& out) {
  using bits_t = typename F::bits_t;
  // A local copy: the state pointers inside must be registers, not memory the stores of the
  // loop might (for the compiler) overwrite.
  const Element element = rule;
  auto* param = static_cast<bits_t*>(t.param);
  const auto* grad = static_cast<const bits_t*>(t.grad);
  auto* comp = static_cast<bits_t*>(t.comp);
  const uint32_t key = t.rng_key;
  StatsBlock block;
  PositionCounter<LanesU32x8> block_flips;  // where the groups below do not count the flips
#if BK_ISA_AVX2
  GroupStats<F> groups;
  const bool count_groups = (_mm_getcsr() & kDenormalsAreZero) == 0;
#else
  constexpr bool count_groups = false;
#endif
  for (; b0 < end; b0 += StatsBlock::kBlock) {
    const int n = int(std::min<int64_t>(StatsBlock::kBlock, end - b0));
    // In spans, each prefetching its lines kPrefetchElements ahead: 16 elements a span cost the
    // vectorized loop its speed in L2, 64 do not. On 16M AdamW elements with AVX2 (x86-64-v3
    // kernels on an AVX-512 Xeon) the steps took 17-20% less time without statistics and ~10%
    // less with them.
    for (int s0 = 0; s0 < n; s0 += kPrefetchSpan) {
      const int s1 = std::min(n, s0 + kPrefetchSpan);
      const int64_t ahead = b0 + s0 + kPrefetchElements;
      prefetch_elements(param, ahead, kPrefetchSpan, sizeof(bits_t));
      prefetch_elements(grad, ahead, kPrefetchSpan, sizeof(bits_t));
      prefetch_elements(comp, ahead, kPrefetchSpan, sizeof(bits_t));
      for (const float* state : t.state) {
        prefetch_elements(state, ahead, kPrefetchSpan, sizeof(float));
      }
#pragma omp simd
      for (int j = s0; j < s1; ++j) {
        const int64_t i = b0 + j;
        const uint32_t old_bits = param[i];
        const float p = to_float<F>(old_bits);
        const float stored_g = to_float<F>(grad[i]);
        const float g = kDivide ? stored_g / unscale : stored_g * unscale;  // as torch unscales
        const float d = element(i, p, g);
        const uint32_t random_bits =
            kMode == Rounding::kStochastic ? element_random(key, uint64_t(i)) : 0u;
        const Landed landed =
            land<F, kMode, kKahan>(p, d, kKahan ? uint32_t(comp[i]) : 0u, random_bits);
        param[i] = bits_t(landed.new_bits);
        if constexpr (kKahan) comp[i] = bits_t(landed.comp_bits);
        if constexpr (kTrack) {
          block.flip[j] = old_bits ^ landed.new_bits;
          block.d_bits[j] = float_bits(landed.d);
          block.g[j] = g;
        }
      }
#if BK_ISA_AVX2
      // Each group is counted as soon as it is updated (see stats_avx2.h).
      if constexpr (kTrack) {
        if (count_groups && (s1 % GroupStats<F>::kGroup == 0 || s1 == n)) {
          const int j0 = (s1 - 1) / GroupStats<F>::kGroup * GroupStats<F>::kGroup;
          groups.count(block, param + b0, j0, s1 - j0, out);
        }
      }
#endif
    }
    if constexpr (kTrack) {
      if (!count_groups) {
        block_flips.add_words(block.flip, n);
        count_general<F>(block, param + b0, 0, n, out);
      }
    }
  }
  if constexpr (kTrack) {
#if BK_ISA_AVX2
    groups.finish(out);
#endif
    block_flips.finish(out.flips);
    block.finish(out);
  }
}

template <class F, Rounding kMode, bool kKahan, bool kTrack, class Element>
void step_range(const Element& rule, const StepTensor& t, int64_t begin, int64_t end,
                const float* grad_scale, Partial& out) {
#if BK_ISA_AVX512
  // The whole groups here; the rest (a chunk's last < 256 elements, or everything under
  // denormals-are-zero) in the AVX2 blocks, which namespace v4 does not compile again: on so few
  // elements 16 lanes gain nothing, and a copy of the blocks is a third of each step's build.
  int64_t b0 = begin;
  if ((_mm_getcsr() & kDenormalsAreZero) == 0)
    b0 = step_groups_avx512<F, kMode, kKahan, kTrack>(rule, t, begin, end, grad_scale, out);
  if (b0 < end) v3::step_range<F, kMode, kKahan, kTrack>(rule, t, b0, end, grad_scale, out);
#elif BK_ISA_AVX2
  const GradUnscale unscale = GradUnscale::of(grad_scale);
  if (unscale.how == GradUnscale::kDivide)
    step_blocks<F, kMode, kKahan, kTrack, true>(rule, t, begin, end, unscale.factor, out);
  else  // x * 1 is exact: without AMP the multiply changes nothing
    step_blocks<F, kMode, kKahan, kTrack, false>(rule, t, begin, end, unscale.factor, out);
#else
  // One instantiation where speed matters least: x / 1 is exact.
  const float scale = grad_scale != nullptr ? *grad_scale : 1.0f;
  step_blocks<F, kMode, kKahan, kTrack, true>(rule, t, begin, end, scale, out);
#endif
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
