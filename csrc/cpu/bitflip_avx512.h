// bitflip_stats with AVX-512: 16 words per vector, bit positions counted with the Harley-Seal
// adders of position_counter.h, loads prefetched ahead (two read streams per thread do not
// reach the memory bandwidth on their own). With an update, the fused step's per-vector statistics
// (VectorStats) with no gradient. Compiled into namespace v4 only (see simd.h): no include
// guard, no includes. Each function handles a prefix of its range and returns where it stopped;
// the generic loops of bitflip_stats_impl.h count the rest.

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

// flips and changed of a ^ b over whole groups of 256 of the nwords 32-bit words (one fp32 or
// two 16-bit elements each); returns the words counted.
template <int kElemBits>
BK_NOINLINE int64_t count_xor_words_avx512(const uint8_t* a, const uint8_t* b, int64_t nwords,
                                           Partial& out) {
  constexpr int kGroupWords = 256;
  PositionCounter<Lanes512> flips;
  int64_t changed = 0;
  int64_t i = 0;
  for (; i + kGroupWords <= nwords; i += kGroupWords) {
    flips.add16([&](int v) BK_ALWAYS_INLINE_LAMBDA {
      const int64_t byte = 4 * (i + 16 * v);
      prefetch_ahead(a + byte, 0, 4);
      prefetch_ahead(b + byte, 0, 4);
      const __m512i x = _mm512_xor_si512(_mm512_loadu_si512(a + byte), _mm512_loadu_si512(b + byte));
      if constexpr (kElemBits == 32) {
        changed += __builtin_popcount(_mm512_test_epi32_mask(x, x));
      } else {
        changed += __builtin_popcount(_mm512_test_epi16_mask(x, x));
      }
      return x;
    });
  }
  flips.finish(out.flips);
  out.changed += changed;
  return i;
}

// The whole contract for the whole groups of 256 elements of [begin, end), given the intended
// update d; returns where it stopped.
template <class F>
BK_NOINLINE int64_t count_with_update_avx512(const typename F::bits_t* old_bits,
                                             const typename F::bits_t* new_bits,
                                             const uint32_t* d, int64_t begin, int64_t end,
                                             Partial& out) {
  using bits_t = typename F::bits_t;
  constexpr int kGroup = VectorStats<F>::kGroup;
  auto prefetch_vector = [&](int64_t i) BK_ALWAYS_INLINE_LAMBDA {
    prefetch_ahead(old_bits, i, sizeof(bits_t));
    prefetch_ahead(new_bits, i, sizeof(bits_t));
    prefetch_ahead(d, i, sizeof(uint32_t));
  };
  VectorStats<F> stats;
  VectorSums sums = stats.start(/*grad_scale=*/1.0f);  // no gradient: its sum stays 0
  int64_t b0 = begin;
  for (; b0 + kGroup <= end; b0 += kGroup) {
    auto add_vector = [&](int v, auto odd) BK_ALWAYS_INLINE_LAMBDA {
      const int64_t i = b0 + 16 * v;
      prefetch_vector(i);
      const F32x16 p = load_widened16<F>(old_bits + i), q = load_widened16<F>(new_bits + i);
      __m512i pair_flips = _mm512_setzero_si512();
      if constexpr (VectorStats<F>::kPacked && decltype(odd)::value) {
        pair_flips = _mm512_xor_si512(_mm512_loadu_si512(old_bits + i - 16),
                                      _mm512_loadu_si512(new_bits + i - 16));
      }
      const VectorValues values = {float_bits(p), float_bits(q), q, p,
                                   F32x16(_mm512_loadu_ps(reinterpret_cast<const float*>(d + i))),
                                   F32x16(0.0f), pair_flips};
      stats.template add<decltype(odd)::value>(v, values, sums);
    };
    for (int v = 0; v < kGroup / 16; v += 2) {
      add_vector(v, std::false_type());
      add_vector(v + 1, std::true_type());
    }
    VectorStats<F>::prefetch_next_group(b0 + kGroup, prefetch_vector);
    stats.end_group(new_bits + b0, [](int) { return 0.0f; }, sums, out);
  }
  stats.finish(sums, out);
  return b0;
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
