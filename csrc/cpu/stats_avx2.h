// The statistics of the CPU steps' block loop with AVX2 (step_impl.h), counted group by group
// right after each group's update; bitflip_stats with an update counts with them too
// (bitflip_stats_impl.h). Compiled into namespaces v3 and v4 (see simd.h): no include guard, no
// includes; the includer provides <immintrin.h>, position_counter.h, depth_window.h,
// count_general.h and what stats_block.h needs first.
//
// Why group by group: the update streams from memory and the counting works on L1-resident
// buffers. Counted a whole block (1920 elements) after its update, the counting ran while no
// loads were in flight, and the statistics added 40-50% to AdamW's step (bench/RESULTS.md);
// counted every 128 elements, the next group's prefetches and loads keep the memory busy
// while the core counts.
//
// Per group of 16 vectors of 8 lanes, from the block's buffers (flip masks, updates, gradients)
// and the new stored values: the flip masks and the depth bins made one-hot words are counted
// per bit position by Harley-Seal carry-save adders (PositionCounter, position_counter.h; the
// bins in a window that moves to where they are, DepthWindow, depth_window.h, as the AVX-512
// kernel does); changed and lost in vector counters (zero: the elements without a bin); the
// four sums in scaled fp32 (kSquareScale) folded into float64 lanes. The depth bin is
// a difference of exponent fields, exact for every finite value (the update's exponent is taken
// from d * 2^40, normal even for a subnormal d): a group whose sums are not finite (a
// non-finite value anywhere, or one too large for the scaled squares) is counted by the general
// path instead (count_general.h), which applies every rule of the contract.

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

// 8 stored words of F, one per 32-bit lane.
template <class F>
BK_ALWAYS_INLINE __m256i load_stored(const typename F::bits_t* x) {
  if constexpr (F::kWidth == 32) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  } else {
    return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
  }
}

// Stored bits of F in 32-bit lanes, widened exactly to fp32.
template <class F>
BK_ALWAYS_INLINE __m256 widen(__m256i bits) {
  if constexpr (F::kWidth == 32) {
    return _mm256_castsi256_ps(bits);
  } else if constexpr (F::kExponent == 8) {  // bf16: the top half of an fp32
    return _mm256_castsi256_ps(_mm256_slli_epi32(bits, 16));
  } else {  // fp16: F16C converts exactly, subnormals included
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(bits, bits), 0x08);
    return _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
  }
}

// The statistics of the groups of a chunk that the fast path counted; the rest go to the
// general path (step_impl.h), which its caller runs where count() says.
template <class F>
struct GroupStats {
  static constexpr int kGroup = 16 * kLanes;
  static constexpr int kNoBin = DepthWindow<Lanes256, kGroup>::kNoBin;
  static_assert(StatsBlock::kBlock % kGroup == 0, "groups tile a block");

  // 16-bit formats count the flips of two groups at once, packed two to a 32-bit word (half the
  // carry-save adders): `packed_flips` holds them, the first group's in vectors 0..7.
  static constexpr bool kPacked = F::kWidth == 16;

  alignas(32) uint32_t packed_flips[kGroup];
  int packed_half = 0;  // kPacked: which half of packed_flips the next group fills
  PositionCounter<Lanes256> flips;
  DepthWindow<Lanes256, kGroup> depths;  // depths.index: the group's depth indexes
  __m256i unchanged, lost;  // per lane, over the groups counted here
  __m256d sums_lanes[2];    // sums 0..3 in lanes 0..3 of each (see count)
  int64_t counted = 0;

  // A constructor, not default member initializers: GCC 12 compiles those without the target
  // of the region (see simd.h).
  GroupStats() {
    unchanged = lost = _mm256_setzero_si256();
    sums_lanes[0] = sums_lanes[1] = _mm256_setzero_pd();
  }

  BK_ALWAYS_INLINE void count_flips(const uint32_t* flip) {
    if constexpr (!kPacked) {
      flips.add16_words(flip);
    } else {
      // Word order does not matter to the counts; each word's two halves fold onto the same
      // positions when committed (Partial::flips, k and k + 16).
      for (int v = 0; v < 8; ++v)
        _mm256_store_si256(
            reinterpret_cast<__m256i*>(packed_flips + kLanes * (8 * packed_half + v)),
            _mm256_packus_epi32(Lanes256::load(flip + kLanes * 2 * v),
                                Lanes256::load(flip + kLanes * (2 * v + 1))));
      if (packed_half == 1) flips.add16_words(packed_flips);
      packed_half ^= 1;
    }
  }

  // Counts elements j0 .. j0 + m - 1 of a block (j0 a multiple of kGroup, m <= kGroup) whose
  // loop has filled block.flip, d_bits and g; param: the new stored values of the block's
  // element 0 onward. The general path counts what the fast path leaves: all of the group when
  // it holds a value the fast path does not count, the last m % 8 elements otherwise.
  BK_ALWAYS_INLINE void count(StatsBlock& block, const typename F::bits_t* param, int j0, int m,
                              Partial& out) {
    count_general<F>(block, param, count_fast(block, param, j0, m), j0 + m, out);
  }

  // The fast path of count(): returns the first element it did not count. Flips are counted
  // here for all m elements either way.
  BK_ALWAYS_INLINE int count_fast(StatsBlock& block, const typename F::bits_t* param, int j0,
                                  int m) {
    uint32_t* const flip = block.flip + j0;
    for (int j = m; j < kGroup; ++j) flip[j] = 0u;  // a short last group: nothing flips
    count_flips(flip);
    const int vectors = m / kLanes;
    // The exponent field of an fp32 below which a value of F is subnormal (or zero): its ulp is
    // that of the smallest normal.
    const __m256i ulp_field = _mm256_set1_epi32(Fp32::kBias + 1 - F::kBias);
    // index = ed - max(eo, ulp_field) + index_offset: the bin, floor(log2|d|) - ulp
    // exponent(old) + 40, less the window, in fp32 exponent fields: ed of d * 2^40 (exact, and
    // normal for every nonzero |d| below 2^88, subnormals included: the exponent of d + 40), eo
    // of the old value widened to fp32. A larger |d| overflows the scaled squares, and its
    // group goes to the general path.
    static_assert(kSquareScale == 0x1p40f, "ed is the exponent field of d * 2^40");
    const __m256i index_offset =
        _mm256_set1_epi32(F::kMantissa - stats::kDepthMin - 40 - depths.window);
    const __m256i top_index = _mm256_set1_epi32(stats::kDepthBins - 1 - depths.window);
    __m256i highest = _mm256_set1_epi32(-1);  // the highest index of a moving element
    __m256i lowest = _mm256_set1_epi32(kNoBin);  // the lowest index
    const __m256 scale = _mm256_set1_ps(kSquareScale);
    // Zero updates are counted in finish(), as the elements counted here without a depth bin.
    __m256i group_unchanged = _mm256_setzero_si256(), group_lost = _mm256_setzero_si256();
    __m256 squares[stats::kNumSums];
    for (auto& s : squares) s = _mm256_setzero_ps();
    auto add_square = [&](__m256& total, __m256 x) BK_ALWAYS_INLINE_LAMBDA {
      const __m256 y = _mm256_mul_ps(x, scale);
      total = _mm256_fmadd_ps(y, y, total);
    };
    for (int v = 0; v < vectors; ++v) {
      const int j = j0 + kLanes * v;
      const __m256i flips_v = _mm256_load_si256(reinterpret_cast<const __m256i*>(block.flip + j));
      const __m256i d_bits =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(block.d_bits + j));
      const __m256i new_bits = load_stored<F>(param + j);
      const __m256 p = widen<F>(_mm256_xor_si256(new_bits, flips_v));
      const __m256 q = widen<F>(new_bits);
      const __m256 d_scaled = _mm256_mul_ps(_mm256_castsi256_ps(d_bits), scale);
      squares[stats::kSumD2] = _mm256_fmadd_ps(d_scaled, d_scaled, squares[stats::kSumD2]);
      // |d| * 2^40 shifted left once: zero for a zero update.
      const __m256i d_twice = _mm256_slli_epi32(_mm256_castps_si256(d_scaled), 1);
      const __m256i is_zero = _mm256_cmpeq_epi32(d_twice, _mm256_setzero_si256());
      const __m256i ed = _mm256_srli_epi32(d_twice, 24);
      const __m256i eo = _mm256_srli_epi32(_mm256_slli_epi32(_mm256_castps_si256(p), 1), 24);
      __m256i index = _mm256_add_epi32(_mm256_sub_epi32(ed, _mm256_max_epi32(eo, ulp_field)),
                                       index_offset);
      index = _mm256_min_epi32(index, top_index);
      // Before the blend: a zero update's index (ed = 0) is at most F::kMantissa - 1 - window,
      // below 32, so only nonzero updates can be above the window.
      highest = _mm256_max_epi32(highest, index);
      index = _mm256_blendv_epi8(index, _mm256_set1_epi32(kNoBin), is_zero);
      lowest = _mm256_min_epi32(lowest, index);
      _mm256_store_si256(reinterpret_cast<__m256i*>(depths.index + kLanes * v), index);
      const __m256i kept = _mm256_cmpeq_epi32(flips_v, _mm256_setzero_si256());
      group_unchanged = _mm256_sub_epi32(group_unchanged, kept);
      group_lost = _mm256_sub_epi32(group_lost, _mm256_andnot_si256(is_zero, kept));
      add_square(squares[stats::kSumG2], _mm256_load_ps(block.g + j));
      const __m256 p_scaled = _mm256_mul_ps(p, scale);
      squares[stats::kSumP2] = _mm256_fmadd_ps(p_scaled, p_scaled, squares[stats::kSumP2]);
      // (q - p) * scale in one rounding from q * scale (exact) - p_scaled: the fp32 difference,
      // scaled, except that a difference below fp32's normal range keeps more bits.
      const __m256 r_scaled = _mm256_fmsub_ps(q, scale, p_scaled);
      squares[stats::kSumR2] = _mm256_fmadd_ps(r_scaled, r_scaled, squares[stats::kSumR2]);
    }
    // The four sums, 8 lanes each, to 2 lanes each: lanes 0..3 and 4..7 hold sums 0..3.
    const __m256 folded = _mm256_hadd_ps(_mm256_hadd_ps(squares[0], squares[1]),
                                         _mm256_hadd_ps(squares[2], squares[3]));
    const bool finite =
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(folded, folded), _mm256_setzero_ps(),
                                         _CMP_NEQ_UQ)) == 0;
    if (__builtin_expect(!finite, 0)) return j0;
    for (int v = vectors; v < 16; ++v)
      _mm256_store_si256(reinterpret_cast<__m256i*>(depths.index + kLanes * v),
                         _mm256_set1_epi32(kNoBin));
    const bool below = !_mm256_testz_si256(lowest, _mm256_set1_epi32(int(0x80000000u)));
    const __m256i above_window = _mm256_cmpgt_epi32(highest, _mm256_set1_epi32(31));
    const bool above = !_mm256_testz_si256(above_window, above_window);
    depths.count(below || above);
    unchanged = _mm256_add_epi32(unchanged, group_unchanged);
    lost = _mm256_add_epi32(lost, group_lost);
    // Each lane of `folded` adds 4 lanes of 16 terms: 64 per fp32 total, as kSumSpan.
    sums_lanes[0] = _mm256_add_pd(sums_lanes[0], _mm256_cvtps_pd(_mm256_castps256_ps128(folded)));
    sums_lanes[1] = _mm256_add_pd(sums_lanes[1], _mm256_cvtps_pd(_mm256_extractf128_ps(folded, 1)));
    counted += kLanes * vectors;
    return j0 + kLanes * vectors;
  }

  // Adds everything counted to out.
  void finish(Partial& out) {
    if (kPacked && packed_half == 1) {  // a first half waits: count it with a zero second half
      std::memset(packed_flips + kGroup / 2, 0, sizeof packed_flips / 2);
      flips.add16_words(packed_flips);
      packed_half = 0;
    }
    flips.finish(out.flips);
    const int64_t moving = depths.finish(out.depth);
    alignas(32) double lanes[2][4];
    _mm256_store_pd(lanes[0], sums_lanes[0]);
    _mm256_store_pd(lanes[1], sums_lanes[1]);
    for (int k = 0; k < stats::kNumSums; ++k)
      out.sums[k] += (lanes[0][k] + lanes[1][k]) * kSquareUnscale;
    out.changed += counted - Lanes256::lane_sum(unchanged);
    out.lost += Lanes256::lane_sum(lost);
    out.zero += counted - moving;  // every element counted here moves or has a zero update
  }
};

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
