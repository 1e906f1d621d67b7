// The statistics of an ordinary block with AVX2 intrinsics: the fast path of the CPU kernels,
// compiled only into namespace v3 (see simd.h): no include guard, no includes; the includer
// provides <immintrin.h> and what stats_block.h needs first.
//
// An element is ordinary when its update is finite, normal and nonzero and its old and new
// values are finite: almost every element of a training step. In a block of ordinary elements
// `zero` and `nonfinite` are 0, lost = unchanged = n - changed, and the depth bin is a
// difference of exponent fields (ed - max(eo, 1) + constant, clamped), so the class codes of
// the general path are not needed. Depth bins are counted 8 lanes at a time in a window of 32
// bins (DepthWindow); bins outside it, rare, one by one. Non-finite values are not looked for
// one by one: any of them makes the block's fp32 sums non-finite, and such blocks are
// taken by the general path, which applies the contract's exclusions (and handles the rare
// finite value too large for the scaled fp32 sums).

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

BK_ALWAYS_INLINE uint32_t lane_sum(__m256i v) {
  alignas(32) uint32_t x[kLanes];
  _mm256_store_si256(reinterpret_cast<__m256i*>(x), v);
  uint32_t total = 0;
  for (int l = 0; l < kLanes; ++l) total += x[l];
  return total;
}

BK_ALWAYS_INLINE double lane_sum(__m256 v) {
  alignas(32) float x[kLanes];
  _mm256_store_ps(x, v);
  double total = 0;
  for (int l = 0; l < kLanes; ++l) total += x[l];
  return total;
}

// Counts depth bins window .. window + kBins - 1, 8 lanes at a time: a lane adds 1 << 4b (b:
// its bin's offset in the window) to the register of 4-bit fields of its group of 8 bins, as
// part[k] += 1 << (4b - 32k). AVX2 variable shifts by 32 or more (negative counts included)
// give 0, so a lane lands in one register, or in none when outside the window. The 4-bit
// fields hold 15 vectors; fold() moves them into byte fields, which hold a block's 240.
struct DepthWindow {
  static constexpr int kParts = 4;
  static constexpr int kBins = 8 * kParts;
  static constexpr int kVectorsPerFold = 15;
  __m256i part[kParts];            // 4-bit fields: bins 8k .. 8k + 7 of the window
  __m256i even[kParts], odd[kParts];  // 8-bit fields after fold(): even and odd bins

  BK_ALWAYS_INLINE DepthWindow() {
    for (int k = 0; k < kParts; ++k) part[k] = even[k] = odd[k] = _mm256_setzero_si256();
  }

  // offset: bin - window per lane.
  BK_ALWAYS_INLINE void add(__m256i offset) {
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i shift = _mm256_slli_epi32(offset, 2);
    for (int k = 0; k < kParts; ++k) {
      const __m256i shift_k = _mm256_sub_epi32(shift, _mm256_set1_epi32(32 * k));
      part[k] = _mm256_add_epi32(part[k], _mm256_sllv_epi32(one, shift_k));
    }
  }

  BK_ALWAYS_INLINE static bool all_inside(__m256i offset) {
    return _mm256_testz_si256(offset, _mm256_set1_epi32(~(kBins - 1)));
  }

  BK_ALWAYS_INLINE void fold() {
    const __m256i nibbles = _mm256_set1_epi32(0x0F0F0F0F);
    for (int k = 0; k < kParts; ++k) {
      even[k] = _mm256_add_epi32(even[k], _mm256_and_si256(part[k], nibbles));
      odd[k] = _mm256_add_epi32(odd[k],
                                _mm256_and_si256(_mm256_srli_epi32(part[k], 4), nibbles));
      part[k] = _mm256_setzero_si256();
    }
  }

  // Adds the count of window bin b to counts[b], b = 0 .. kBins - 1.
  BK_ALWAYS_INLINE void add_to(uint32_t* counts) const {
    for (int k = 0; k < kParts; ++k) {
      alignas(32) uint8_t bytes[2][32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(bytes[0]), even[k]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(bytes[1]), odd[k]);
      // Byte q of a lane holds bin 8k + 2q (even) or 8k + 2q + 1 (odd).
      for (int parity = 0; parity < 2; ++parity)
        for (int l = 0; l < kLanes; ++l)
          for (int q = 0; q < 4; ++q) counts[8 * k + 2 * q + parity] += bytes[parity][4 * l + q];
    }
  }

  // The window start covering the most of a histogram of all bins.
  static int best_start(const uint32_t* depth) {
    int64_t covered = 0;
    for (int b = 0; b < kBins; ++b) covered += depth[b];
    int64_t best = covered;
    int start = 0;
    for (int w = 1; w + kBins <= stats::kDepthBins; ++w) {
      covered += int64_t(depth[w + kBins - 1]) - depth[w - 1];
      if (covered > best) best = covered, start = w;
    }
    return start;
  }
};

// The four sums of vectors [0, vectors) of a block into totals: squares of x * 2^40 (see
// kSquareScale) in fp32 lanes, two vectors per iteration so that the FMA chains overlap, then
// float64. Returns false when a total is not finite: the block holds an inf or NaN (update, gradient, old or
// new value) or a value too large for the scaled squares.
template <class F>
BK_ALWAYS_INLINE bool block_sums(const StatsBlock& block, const typename F::bits_t* param,
                                 int vectors, const float* g, double* totals) {
  const __m256 scale = _mm256_set1_ps(kSquareScale);
  __m256 sums[2][stats::kNumSums];
  for (auto& half : sums)
    for (auto& sum : half) sum = _mm256_setzero_ps();
  auto add_vector = [&](__m256* sum, int j) {
    auto add_square = [&](__m256& total, __m256 x) {
      const __m256 y = _mm256_mul_ps(x, scale);
      total = _mm256_fmadd_ps(y, y, total);
    };
    const __m256i new_bits = load_stored<F>(param + j);
    const __m256i flip = _mm256_load_si256(reinterpret_cast<const __m256i*>(block.flip + j));
    const __m256 p = widen<F>(_mm256_xor_si256(new_bits, flip));
    add_square(sum[stats::kSumD2], _mm256_load_ps(reinterpret_cast<const float*>(block.d_bits + j)));
    add_square(sum[stats::kSumP2], p);
    add_square(sum[stats::kSumR2], _mm256_sub_ps(widen<F>(new_bits), p));
    if (g != nullptr) add_square(sum[stats::kSumG2], _mm256_load_ps(g + j));
  };
  int v = 0;
  for (; v + 2 <= vectors; v += 2) {
    add_vector(sums[0], kLanes * v);
    add_vector(sums[1], kLanes * (v + 1));
  }
  if (v < vectors) add_vector(sums[0], kLanes * v);
  bool finite = true;
  for (int k = 0; k < stats::kNumSums; ++k) {
    totals[k] = lane_sum(_mm256_add_ps(sums[0][k], sums[1][k])) * kSquareUnscale;
    finite = finite && totals[k] - totals[k] == 0.0;
  }
  return finite;
}

// Counts elements [0, 8 * (n / 8)) of a block whose update loop left flip masks, updates and
// gradients in `block`; param: the new stored values of element 0 onward. Returns the number of
// elements counted, 8 * (n / 8), or 0 when one of them is not ordinary (then nothing has been
// counted). Flips are not counted here (StatsBlock::count_flips counts them for every block).
// g: the block's unscaled gradients, or null when there are none (bitflip_stats).
template <class F>
int count_ordinary_block(StatsBlock& block, const typename F::bits_t* param, int n, Partial& out,
                         const float* g) {
  static_assert(StatsBlock::kBlock / kLanes <= 255, "byte fields of DepthWindow overflow");
  constexpr int kExponentMax = (1 << F::kExponent) - 1;
  // n = floor(log2|d|) - ulp_exponent(old) = (ed - 127) - (max(eo, 1) - bias - p); bin = n + 40.
  constexpr int kBinOffset = -stats::kDepthMin - Fp32::kBias + F::kBias + F::kMantissa;
  const int vectors = n / kLanes;
  if (vectors == 0) return 0;
  if (block.depth_window < 0) {
    const uint32_t new_bits = param[0];
    const int bin = stats::depth_bin<F>(block.d_bits[0], new_bits ^ block.flip[0]);
    block.depth_window =
        std::max(0, std::min(bin - DepthWindow::kBins / 2,
                             stats::kDepthBins - DepthWindow::kBins));
  }
  const int window = block.depth_window;
  const __m256i zero = _mm256_setzero_si256();
  const __m256i one = _mm256_set1_epi32(1);
  // The smallest update exponent field: 0 flags a zero or subnormal update. Non-finite values
  // (update, old or new) make the block's sums non-finite, which add_block_sums() reports.
  __m256i min_ed = _mm256_set1_epi32(255);
  __m256i unchanged = zero;
  DepthWindow in_window;
  uint32_t depth[stats::kDepthBins] = {};
  for (int v0 = 0; v0 < vectors; v0 += DepthWindow::kVectorsPerFold) {
    const int v1 = std::min(vectors, v0 + DepthWindow::kVectorsPerFold);
    for (int v = v0; v < v1; ++v) {
      const int j = kLanes * v;
      const __m256i flip = _mm256_load_si256(reinterpret_cast<const __m256i*>(block.flip + j));
      const __m256i d_bits =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(block.d_bits + j));
      const __m256i old_bits = _mm256_xor_si256(load_stored<F>(param + j), flip);
      const __m256i ed = _mm256_and_si256(_mm256_srli_epi32(d_bits, 23), _mm256_set1_epi32(255));
      const __m256i eo = _mm256_and_si256(_mm256_srli_epi32(old_bits, F::kMantissa),
                                          _mm256_set1_epi32(kExponentMax));
      min_ed = _mm256_min_epu32(min_ed, ed);
      unchanged = _mm256_sub_epi32(unchanged, _mm256_cmpeq_epi32(flip, zero));
      // The bin's offset in the window, clamped to the top bin (updates far above the ulp of
      // small parameters are common) but not to the bottom: lanes outside the window are
      // clamped below.
      const __m256i offset = _mm256_min_epi32(
          _mm256_sub_epi32(_mm256_add_epi32(ed, _mm256_set1_epi32(kBinOffset - window)),
                           _mm256_max_epi32(eo, one)),
          _mm256_set1_epi32(stats::kDepthBins - 1 - window));
      in_window.add(offset);
      if (__builtin_expect(!in_window.all_inside(offset), 0)) {
        alignas(32) int32_t offsets[kLanes];
        _mm256_store_si256(reinterpret_cast<__m256i*>(offsets), offset);
        for (int l = 0; l < kLanes; ++l) {
          if (offsets[l] >= 0 && offsets[l] < DepthWindow::kBins) continue;
          ++depth[std::max(0, std::min(offsets[l] + window, stats::kDepthBins - 1))];
        }
      }
    }
    in_window.fold();
  }
  if (_mm256_testz_si256(_mm256_cmpeq_epi32(min_ed, zero), _mm256_cmpeq_epi32(min_ed, zero)) == 0)
    return 0;  // a zero or subnormal update
  const int counted = kLanes * vectors;
  double sums[stats::kNumSums];
  if (!block_sums<F>(block, param, vectors, g, sums)) return 0;  // non-finite or huge values
  for (int k = 0; k < stats::kNumSums; ++k) out.sums[k] += sums[k];
  const int64_t kept = lane_sum(unchanged);
  out.lost += kept;
  out.changed += counted - kept;
  in_window.add_to(depth + window);
  for (int k = 0; k < stats::kDepthBins; ++k) out.depth[k] += depth[k];
  block.depth_window = DepthWindow::best_start(depth);
  return counted;
}

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
