// CPU kernel of bitkernels::bitflip_stats: OpenMP over contiguous ranges, one partial result per
// thread, committed once. Without an update the loop is pure bit counting over 32-bit words
// (one fp32 or two 16-bit elements per word), vectorized 8 lanes wide; with an update it walks
// elements and applies the per-element contract of bitstats.h.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "bitkernels/bitstats.h"
#include "bitkernels/rounding.h"
#include "bitkernels/rules.h"
#include "op_checks.h"
#include "partial.h"
#include "simd.h"
#include "stats_block.h"

#define BK_ISA_LOOPS "bitflip_stats_impl.h"
#include "for_each_isa.h"
#undef BK_ISA_LOOPS

namespace bitkernels {
namespace cpu {
namespace {

namespace s = stats;

// Below this many elements one thread does the work: waking a team costs more than it saves.
constexpr int64_t kMinElementsPerThread = 1 << 16;

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
      BK_ISA_CALL(count_with_update<F>(a, b, d, begin, end, p));
    });
  }
  constexpr int64_t kPerWord = 32 / F::kWidth;
  const auto* a8 = reinterpret_cast<const uint8_t*>(a);
  const auto* b8 = reinterpret_cast<const uint8_t*>(b);
  // Ranges start on whole groups of 256 words (the AVX-512 loop's, two of the 8-lane loop's), so
  // every thread runs the vector loops.
  const int64_t align = kPerWord * 256;
  const int64_t paired = n / kPerWord * kPerWord;  // elements covered by whole words
  Partial total = parallel_partials(paired, align, [&](int64_t begin, int64_t end, Partial& p) {
    const int64_t byte0 = begin * int64_t(sizeof(bits_t));
    BK_ISA_CALL(count_xor_words<F::kWidth>(a8 + byte0, b8 + byte0, (end - begin) / kPerWord, p));
  });
  for (int64_t i = paired; i < n; ++i) {  // odd 16-bit tail
    const uint32_t x = uint32_t(a[i] ^ b[i]);
    for (int k = 0; k < 32; ++k) total.flips[k] += (x >> k) & 1u;
    total.changed += x != 0u;
  }
  return total;
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
  commit_atomic(p, width, d.has_value(), a.numel(), 1, counters.mutable_data_ptr<int64_t>(),
                sums.mutable_data_ptr<double>());
}

}  // namespace
}  // namespace cpu
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("bitflip_stats", &bitkernels::cpu::bitflip_stats_cpu);
}
