// The statistics of the AVX-512 fused step (step_avx512.h), 16 lanes at a time, in groups of 16
// vectors. Compiled into namespace v4 only (see simd.h): no include guard, no includes; the
// includer provides <immintrin.h>, vec16.h and what stats_block.h needs first.
//
// Per vector, from the values the update left in registers: unchanged and lost (popcounts of one
// mask test; 16-bit formats per pair of vectors), the four sums (scaled squares, as in
// stats_block.h), and the depth bin. The flip masks and the bins go to small buffers. At the end
// of a group, Harley-Seal carry-save adders (PositionCounter, position_counter.h) count the bit
// positions of the flip masks and of the bins made one-hot words (in a window of 32 bins that
// moves to where they are, and a second stream that most groups skip: DepthWindow,
// depth_window.h); and the group's sums are folded into float64 lanes. Nothing here branches
// per element.
//
// Every counter of the contract is exact for any value here: the depth bin is computed in exact
// float arithmetic on exponents (getexp), where inf and NaN parameters fall to the lowest bin as
// the contract says. Only the fp32 sums cannot hold everything (non-finite or huge values): a
// group whose sums are not finite is summed again in float64 from the buffers (exact_group),
// which also counts `nonfinite` (0 in every other group, whose values are all finite).

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

// What the vectors accumulate, kept in registers by the loop that owns it (members of
// VectorStats, whose address escapes, would live in memory): the scaled squares of d, g, old p
// and new - old of the current group, and the unchanged and lost elements (mask popcounts, which
// run on the scalar ports beside the vector work).
struct VectorSums {
  __m512 squares[stats::kNumSums];
  __m512i highest;  // lane-wise unsigned maximum of the group's moving depth indexes
  __m512 index_offset, index_top;  // the depth window's constants (see VectorStats::add)
  float gradient_scale;  // kSquareScale / grad_scale (see VectorStats::start)
  int64_t unchanged, lost;
  __mmask16 moving_even;  // 16-bit formats: the moving lanes of the pair's first vector

  BK_ALWAYS_INLINE void start_group() {
    for (auto& s : squares) s = _mm512_setzero_ps();
    highest = _mm512_setzero_si512();
  }
};

// The four sums' 16 lanes each, folded to 4 lanes each, side by side: sum k in lanes 4k..4k+3.
// In fp32: each lane then holds 4 lanes of 16 terms, 64 terms (see kSumSpan).
BK_ALWAYS_INLINE __m512 fold_sums(const __m512 (&s)[stats::kNumSums]) {
  static_assert(stats::kNumSums == 4, "one 128-bit block per sum");
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(s[0], s[1], 0x44),   // low halves
                                   _mm512_shuffle_f32x4(s[0], s[1], 0xEE));  // + high halves
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(s[2], s[3], 0x44),
                                   _mm512_shuffle_f32x4(s[2], s[3], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88),   // blocks 0 and 2 of each
                       _mm512_shuffle_f32x4(s01, s23, 0xDD));  // + blocks 1 and 3
}

// One vector's values, as the update left them.
struct VectorValues {
  U32x16 old_bits, new_bits;  // stored bits; not kPacked only
  F32x16 q;                   // new value
  F32x16 p;                   // old value
  F32x16 d;                   // the update that was rounded in
  F32x16 g;                   // the gradient as stored (AMP: still scaled, see start)
  __m512i pair_flips;         // 16-bit formats, odd vectors: the flips of the pair (see kPacked)
};

template <class F>
struct VectorStats {
  static constexpr int kGroup = 256;  // 16 vectors
  static constexpr int kNoBin = DepthWindow<Lanes512, kGroup>::kNoBin;

  // 16-bit formats count the flips of a pair of vectors as one vector of 32 16-bit words in
  // memory order (as the kernels store them, see pack_pair): half the xors, tests, stores and
  // carry-save adders. `flip` then holds two groups' flips and is counted every other group.
  static constexpr bool kPacked = F::kWidth == 16;

  alignas(64) uint32_t flip[kGroup];  // 16 vectors of flip words (kPacked: 32 x 16 bits each)
  int flip_half = 0;                  // kPacked: which half of `flip` this group fills
  alignas(64) uint32_t d_bits[kGroup];  // for exact_group
  alignas(64) double sums_lanes[2][8] = {};  // folded sums (fold_sums) of the finite groups
  PositionCounter<Lanes512> flips;
  DepthWindow<Lanes512, kGroup> depths;  // depths.index: the group's depth indexes
  int64_t counted = 0, d_nonfinite = 0;

  // grad_scale: AMP's gradient scale (1 without). The gradients come as stored and their squares
  // are scaled by kSquareScale / grad_scale: a multiply where unscaling them first would take a
  // second division per vector (the update's own cannot be shared, see step_avx512.h). Within
  // two fp32 roundings of the unscaled gradient's square, and the same bits without AMP; a
  // grad_scale below 2^-88 makes the factor inf and every group's sums exact_group's.
  BK_ALWAYS_INLINE VectorSums start(float grad_scale) const {
    VectorSums sums;
    sums.start_group();
    sums.gradient_scale = kSquareScale / grad_scale;
    sums.unchanged = sums.lost = 0;
    set_window(sums);
    return sums;
  }

  // The depth window's constants, in the registers of the loop (sums).
  BK_ALWAYS_INLINE void set_window(VectorSums& sums) const {
    sums.index_offset = _mm512_set1_ps(float(F::kMantissa - stats::kDepthMin - depths.window));
    sums.index_top = _mm512_set1_ps(float(stats::kDepthBins - 1 - depths.window));
  }

  // Counts vector v of the group; kOdd: v is odd (kPacked: x holds its pair's flips).
  template <bool kOdd>
  BK_ALWAYS_INLINE void add(int v, const VectorValues& x, VectorSums& sums) {
    const int j = 16 * v;
    const F32x16 p = x.p, d = x.d, g = x.g;
    // Moving: d finite and nonzero (fpclass: not QNaN, +-0, +-inf or SNaN).
    const __mmask16 moving = _mm512_knot(_mm512_fpclass_ps_mask(d.v, 0x9F));
    if constexpr (!kPacked) {
      const __m512i flip_bits = _mm512_xor_si512(x.old_bits.v, x.new_bits.v);
      // One mask test for both counts (changed = counted - unchanged): on Zen 4 the tests run on
      // the multiply pipes, which the update and the sums keep busy (bench/RESULTS.md).
      const __mmask16 unchanged = _mm512_testn_epi32_mask(flip_bits, flip_bits);
      sums.unchanged += __builtin_popcount(unchanged);
      sums.lost += __builtin_popcount(_cvtmask16_u32(unchanged) & _cvtmask16_u32(moving));
      _mm512_store_si512(flip + j, flip_bits);
    } else if constexpr (!kOdd) {
      sums.moving_even = moving;
    } else {
      const __m512i pair = x.pair_flips;
      const __mmask32 moving_pair = _mm512_kunpackw(moving, sums.moving_even);
      const __mmask32 unchanged = _mm512_testn_epi16_mask(pair, pair);
      sums.unchanged += __builtin_popcount(unchanged);
      sums.lost += __builtin_popcount(_cvtmask32_u32(unchanged) & _cvtmask32_u32(moving_pair));
      _mm512_store_si512(flip + 8 * (16 * flip_half + v - 1), pair);
    }
    // Depth bin: floor(log2|d|) - (max(floor(log2|p|), emin) - mantissa bits) - kDepthMin,
    // clamped to 0..63, here less the window (the depth index). max(emin, x) is x for x = NaN
    // (p NaN) or +inf (p inf): the difference is NaN or -inf, which min() keeps (it returns its
    // second operand when one is NaN) and the conversion makes INT_MIN, the lowest index; -inf
    // (p = 0) and subnormal p give emin. Only the top is clamped here: indexes below 0 shift out
    // of the window's stream, and the outside stream, which few groups run, clamps them to bin 0.
    // `highest` (unsigned: an index below 0 is above them all) tells whether it must run.
    constexpr float kEmin = float(1 - F::kBias);
    const __m512 ulp_exp = _mm512_max_ps(_mm512_set1_ps(kEmin), _mm512_getexp_ps(p.v));
    __m512 n = _mm512_sub_ps(_mm512_add_ps(_mm512_getexp_ps(d.v), sums.index_offset), ulp_exp);
    n = _mm512_min_ps(sums.index_top, n);
    const __m512i index = _mm512_mask_cvttps_epi32(_mm512_set1_epi32(kNoBin), moving, n);
    sums.highest = _mm512_mask_max_epu32(sums.highest, moving, sums.highest, index);
    _mm512_store_si512(depths.index + j, index);
    _mm512_store_si512(d_bits + j, _mm512_castps_si512(d.v));
    auto add_square = [&](int sum, __m512 scaled) BK_ALWAYS_INLINE_LAMBDA {
      sums.squares[sum] = _mm512_fmadd_ps(scaled, scaled, sums.squares[sum]);
    };
    const __m512 scale = _mm512_set1_ps(kSquareScale);
    add_square(stats::kSumD2, _mm512_mul_ps(d.v, scale));
    add_square(stats::kSumG2, _mm512_mul_ps(g.v, _mm512_set1_ps(sums.gradient_scale)));
    const __m512 p_scaled = _mm512_mul_ps(p.v, scale);
    add_square(stats::kSumP2, p_scaled);
    // (q - p) * scale in one rounding from q * scale (exact) - p_scaled, one instruction less
    // than a difference then scaled: the same value, except that a difference below fp32's
    // normal range keeps more bits (as in stats_avx2.h).
    add_square(stats::kSumR2, _mm512_fmsub_ps(x.q.v, scale, p_scaled));
  }

  // Called just before end_group with the index of the next group's first element and the
  // loop's own prefetch of a vector: the next group's first two vectors' prefetches go out
  // before the counting. end_group runs ~100 vector instructions without a load, and with
  // nothing new requested meanwhile the memory idles for part of it. 16M, on/off in paired runs
  // (bench/step_ratio.py): bf16 AdamW 1.07-1.08 -> 1.04-1.06, fp32 AdamW 1.04-1.05 ->
  // 1.00-1.04, SGD momentum bf16 1.12-1.13 -> 1.10-1.11; bitflip_stats with an update, two 16M
  // fp32 tensors, 5.1-5.2 -> 4.6-5.0 ms (bf16 unchanged). One to four vectors measured alike;
  // eight gave 1.12 and sixteen 1.25: a burst of prefetches stalls the loop instead.
  template <class PrefetchVector>
  BK_ALWAYS_INLINE static void prefetch_next_group(int64_t next,
                                                   const PrefetchVector& prefetch_vector) {
    prefetch_vector(next);
    prefetch_vector(next + 16);
  }

  // After the 16 vectors of a group: param, the group's new stored values; grad_at(j), the
  // unscaled gradient of element j of the group (for exact_group).
  template <class GradAt>
  BK_ALWAYS_INLINE void end_group(const typename F::bits_t* param, const GradAt& grad_at,
                                  VectorSums& sums, Partial& out) {
    if (!kPacked || flip_half == 1) flips.add16_words(flip);
    if constexpr (kPacked) flip_half ^= 1;
    if (depths.count(_mm512_cmpge_epu32_mask(sums.highest, _mm512_set1_epi32(32)) != 0))
      set_window(sums);
    counted += kGroup;
    // Folded, not reduced to scalars: the horizontal sums and their conversions, per group, cost
    // as much as the rest of the group's counting.
    const __m512 folded = fold_sums(sums.squares);
    constexpr int kNotFinite = 0x99;  // fpclass: QNaN, +inf, -inf, SNaN
    if (__builtin_expect(_mm512_fpclass_ps_mask(folded, kNotFinite) == 0, 1)) {
      for (int h = 0; h < 2; ++h) {
        const __m256 half = h == 0 ? _mm512_castps512_ps256(folded)
                                   : _mm512_extractf32x8_ps(folded, 1);
        _mm512_store_pd(sums_lanes[h], _mm512_add_pd(_mm512_load_pd(sums_lanes[h]),
                                                     _mm512_cvtps_pd(half)));
      }
    } else {
      exact_group(param, grad_at, out);
    }
    sums.start_group();
  }

  // The sums of a group with a non-finite or huge value, in float64 with the contract's
  // exclusions, and its non-finite counts.
  template <class GradAt>
  BK_NOINLINE void exact_group(const typename F::bits_t* param, const GradAt& grad_at,
                               Partial& out) {
    // end_group has already moved on to the other half of a packed `flip`.
    const int first_flip = kPacked ? kGroup * (1 - flip_half) : 0;
    auto element_at = [&](int j) {
      const uint32_t new_bits = param[j];
      return stats::element_stats<F>(new_bits ^ flip_word(first_flip + j), new_bits, d_bits[j],
                                     grad_at(j));
    };
    exact_sums(0, kGroup, element_at, out);
    for (int j = 0; j < kGroup; ++j) {
      out.nonfinite += element_at(j).nonfinite;
      d_nonfinite += !stats::is_finite_update(d_bits[j]);
    }
  }

  // Element k's flips in `flip`.
  uint32_t flip_word(int k) const {
    if constexpr (kPacked) {
      uint16_t word;
      std::memcpy(&word, reinterpret_cast<const char*>(flip) + 2 * k, sizeof word);
      return word;
    } else {
      return flip[k];
    }
  }

  // Adds everything counted to out.
  void finish(const VectorSums& sums, Partial& out) {
    if (kPacked && flip_half == 1) {  // a first half waits: count it with a zero second half
      std::memset(flip + kGroup / 2, 0, sizeof flip / 2);
      flips.add16_words(flip);
    }
    flips.finish(out.flips);
    const int64_t moving = depths.finish(out.depth);
    for (int k = 0; k < stats::kNumSums; ++k) {
      const double* lanes = sums_lanes[k / 2] + 4 * (k % 2);
      out.sums[k] += ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) * kSquareUnscale;
    }
    out.changed += counted - sums.unchanged;
    out.lost += sums.lost;
    out.zero += counted - moving - d_nonfinite;  // every element is moving, zero or non-finite
  }
};

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
