// CPU kernel of bitkernels::bitflip_stats: OpenMP over contiguous ranges, one partial result per
// thread, committed once. Without an update the loop is pure bit counting over 32-bit words
// (one fp32 or two 16-bit elements per word), vectorized 8 lanes wide; with an update it walks
// elements and applies the per-element contract of bitstats.h.
#include <algorithm>
#include <cstring>

#include <omp.h>

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "bitkernels/bitstats.h"
#include "op_checks.h"

namespace bitkernels {
namespace {

namespace s = stats;

// AVX2 and baseline builds of the hot loops, picked at load time, so one wheel is fast on
// AVX2 machines and still runs on older ones.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BK_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BK_SIMD_CLONES
#endif
#define BK_ALWAYS_INLINE inline __attribute__((always_inline))

using u32x8 = uint32_t __attribute__((vector_size(32)));
constexpr int kLanes = 8;
using Bits = s::BitPositionCounter<u32x8>;

// Below this many elements one thread does the work: waking a team costs more than it saves.
constexpr int64_t kMinElementsPerThread = 1 << 16;

struct Partial {
  int64_t flips[32] = {};  // positions in a 32-bit word; 16-bit formats fold k+16 onto k
  int64_t changed = 0, lost = 0, zero = 0, nonfinite = 0;
  int64_t depth[s::kDepthBins] = {};
  double sums[s::kNumSums] = {};

  void add(const Partial& o) {
    for (int k = 0; k < 32; ++k) flips[k] += o.flips[k];
    changed += o.changed;
    lost += o.lost;
    zero += o.zero;
    nonfinite += o.nonfinite;
    for (int j = 0; j < s::kDepthBins; ++j) depth[j] += o.depth[j];
    for (int j = 0; j < s::kNumSums; ++j) sums[j] += o.sums[j];
  }
};

BK_ALWAYS_INLINE uint32_t load_word(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

template <int kElemBits>
BK_ALWAYS_INLINE uint32_t changed_in_word(uint32_t x) {
  if constexpr (kElemBits == 32) return x != 0u;
  return uint32_t((x & 0xFFFFu) != 0u) + uint32_t((x >> 16) != 0u);
}

BK_ALWAYS_INLINE void drain(Bits& bits, u32x8& changed, Partial& out) {
  bits.drain(out.flips);
  for (int l = 0; l < kLanes; ++l) out.changed += changed[l];
  changed = u32x8{};
}

// flips and changed of a^b over nwords 32-bit words.
template <int kElemBits>
BK_ALWAYS_INLINE void count_xor_words(const uint8_t* a, const uint8_t* b, int64_t nwords,
                                      Partial& out) {
  constexpr int64_t kFoldWords = int64_t(kLanes) * Bits::kNibbleWords;
  Bits bits;
  bits.clear();
  u32x8 changed = {};
  int folds = 0;
  int64_t i = 0;
  for (; i + kFoldWords <= nwords; i += kFoldWords) {
    for (int r = 0; r < Bits::kNibbleWords; ++r) {
      u32x8 va, vb;
      std::memcpy(&va, a + 4 * (i + kLanes * r), sizeof va);
      std::memcpy(&vb, b + 4 * (i + kLanes * r), sizeof vb);
      const u32x8 x = va ^ vb;
      bits.add(x);
      // A true lane of a vector comparison is -1.
      if constexpr (kElemBits == 32) {
        changed -= (u32x8)(x != 0u);
      } else {
        changed -= (u32x8)((x & 0xFFFFu) != 0u);
        changed -= (u32x8)((x >> 16) != 0u);
      }
    }
    bits.fold();
    if (++folds == Bits::kFoldsPerDrain) {
      drain(bits, changed, out);
      folds = 0;
    }
  }
  drain(bits, changed, out);
  for (; i < nwords; ++i) {
    const uint32_t x = load_word(a + 4 * i) ^ load_word(b + 4 * i);
    for (int k = 0; k < 32; ++k) out.flips[k] += (x >> k) & 1u;
    out.changed += changed_in_word<kElemBits>(x);
  }
}

BK_SIMD_CLONES void count_xor_words_32(const uint8_t* a, const uint8_t* b, int64_t nwords,
                                       Partial& out) {
  count_xor_words<32>(a, b, nwords, out);
}

BK_SIMD_CLONES void count_xor_words_16(const uint8_t* a, const uint8_t* b, int64_t nwords,
                                       Partial& out) {
  count_xor_words<16>(a, b, nwords, out);
}

// The whole contract for elements [begin, end) given the intended update d. Counters are
// locals (not Partial fields) so the histogram stores cannot alias them.
template <class F>
void count_with_update(const typename F::bits_t* a, const typename F::bits_t* b,
                       const uint32_t* d, int64_t begin, int64_t end, Partial& out) {
  s::WordFlipCounter flips;
  flips.clear();
  int64_t changed = 0, lost = 0, zero = 0, nonfinite = 0;
  int64_t depth[s::kDepthBins] = {};
  double sum_d2 = 0.0, sum_p2 = 0.0, sum_r2 = 0.0;
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t old_bits = a[i], new_bits = b[i], d_bits = d[i];
    const uint32_t x = old_bits ^ new_bits;
    flips.add(x);
    changed += x != 0u;
    lost += s::is_lost(d_bits, x);
    zero += s::is_zero_update(d_bits);
    nonfinite += s::is_nonfinite<F>(d_bits, new_bits);
    if (s::is_finite_update(d_bits) && !s::is_zero_update(d_bits))
      ++depth[s::depth_bin<F>(d_bits, old_bits)];
    if (s::feeds_sums<F>(d_bits, old_bits, new_bits)) {
      const double dv = bits_float(d_bits);
      const double ov = to_float<F>(old_bits);
      const double nv = to_float<F>(new_bits);
      sum_d2 += dv * dv;
      sum_p2 += ov * ov;
      sum_r2 += (nv - ov) * (nv - ov);
    }
  }
  flips.finish();
  for (int k = 0; k < 32; ++k) out.flips[k] += int64_t(flips.totals[k]);
  out.changed += changed;
  out.lost += lost;
  out.zero += zero;
  out.nonfinite += nonfinite;
  for (int j = 0; j < s::kDepthBins; ++j) out.depth[j] += depth[j];
  out.sums[s::kSumD2] += sum_d2;
  out.sums[s::kSumP2] += sum_p2;
  out.sums[s::kSumR2] += sum_r2;
}

// Runs body(begin, end, partial) over [0, n) split into one contiguous range per thread, with
// range boundaries on multiples of `align`, and returns the sum of the partials.
template <class Body>
Partial parallel_partials(int64_t n, int64_t align, Body body) {
  const int64_t max_threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t threads =
      std::max<int64_t>(1, std::min<int64_t>(max_threads, n / kMinElementsPerThread));
  Partial total;
#pragma omp parallel num_threads(int(threads))
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = ((n + nt - 1) / nt + align - 1) / align * align;
    const int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    Partial mine;
    if (begin < end) body(begin, end, mine);
#pragma omp critical(bitkernels_commit)
    total.add(mine);
  }
  return total;
}

template <class F>
Partial bitflip_partials(const at::Tensor& old, const at::Tensor& new_,
                         const std::optional<at::Tensor>& update) {
  using bits_t = typename F::bits_t;
  const int64_t n = old.numel();
  const auto* a = static_cast<const bits_t*>(old.const_data_ptr());
  const auto* b = static_cast<const bits_t*>(new_.const_data_ptr());
  if (update.has_value()) {
    const auto* d = static_cast<const uint32_t*>(update->const_data_ptr());
    return parallel_partials(n, 1, [&](int64_t begin, int64_t end, Partial& p) {
      count_with_update<F>(a, b, d, begin, end, p);
    });
  }
  constexpr int64_t kPerWord = 32 / F::kWidth;
  const auto* a8 = reinterpret_cast<const uint8_t*>(a);
  const auto* b8 = reinterpret_cast<const uint8_t*>(b);
  // Ranges start on whole vector blocks so every thread runs the vector loop.
  const int64_t align = kPerWord * kLanes * Bits::kNibbleWords;
  const int64_t paired = n / kPerWord * kPerWord;  // elements covered by whole words
  Partial total = parallel_partials(paired, align, [&](int64_t begin, int64_t end, Partial& p) {
    const int64_t byte0 = begin * int64_t(sizeof(bits_t));
    if constexpr (kPerWord == 1) {
      count_xor_words_32(a8 + byte0, b8 + byte0, end - begin, p);
    } else {
      count_xor_words_16(a8 + byte0, b8 + byte0, (end - begin) / kPerWord, p);
    }
  });
  for (int64_t i = paired; i < n; ++i) {  // odd 16-bit tail
    const uint32_t x = uint32_t(a[i] ^ b[i]);
    for (int k = 0; k < 32; ++k) total.flips[k] += (x >> k) & 1u;
    total.changed += x != 0u;
  }
  return total;
}

void commit(const Partial& p, int width, bool with_update, int64_t numel, int64_t* counters,
            double* sums) {
  for (int k = 0; k < width; ++k) {
    // In 16-bit formats word position k+16 is position k of the second element.
    counters[s::kFlips + k] += p.flips[k] + (width == 16 ? p.flips[k + 16] : 0);
  }
  counters[s::kChanged] += p.changed;
  counters[s::kNumel] += numel;
  counters[s::kSteps] += 1;
  if (!with_update) return;
  counters[s::kLost] += p.lost;
  counters[s::kZero] += p.zero;
  counters[s::kNonfinite] += p.nonfinite;
  for (int j = 0; j < s::kDepthBins; ++j) counters[s::kDepth + j] += p.depth[j];
  for (int j = 0; j < s::kNumSums; ++j) sums[j] += p.sums[j];
}

void bitflip_stats_cpu(const at::Tensor& old, const at::Tensor& new_,
                       const std::optional<at::Tensor>& update, const at::Tensor& counters,
                       const at::Tensor& sums) {
  check_bitflip_stats_args(old, new_, update, counters, sums);
  const at::Tensor a = old.contiguous(), b = new_.contiguous();
  std::optional<at::Tensor> d;
  if (update.has_value()) d = update->contiguous();
  Partial p;
  int width = 32;
  switch (a.scalar_type()) {
    case c10::kFloat:
      p = bitflip_partials<Fp32>(a, b, d);
      break;
    case c10::kBFloat16:
      p = bitflip_partials<Bf16>(a, b, d), width = 16;
      break;
    default:  // kHalf; other dtypes were rejected by the checks
      p = bitflip_partials<Fp16>(a, b, d), width = 16;
      break;
  }
  commit(p, width, d.has_value(), a.numel(), counters.mutable_data_ptr<int64_t>(),
         sums.mutable_data_ptr<double>());
}

}  // namespace
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("bitflip_stats", &bitkernels::bitflip_stats_cpu);
}
