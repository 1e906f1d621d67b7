// Host SIMD support for the CPU kernels.
//
// Vector types: 8 x uint32 (GCC/Clang vector extensions); the AVX-512 lane types are in vec16.h.
//
// ISA dispatch: each kernel's loops live in an "impl" header without include guard, written in
// `namespace BK_ISA_NS`, which includes its per-ISA headers (also unguarded) itself. A kernel
// includes its guarded headers first, then the impl once per ISA through for_each_isa.h: inside
// BK_BEGIN_X86_64_V4 / BK_END_X86_64_V4 as namespace v4 (AVX-512 F, BW, CD, DQ, VL), inside
// BK_BEGIN_X86_64_V3 / BK_END_X86_64_V3 as namespace v3 (AVX2, FMA, F16C, BMI), and plainly as
// namespace base. BK_ISA_CALL picks at run time. The loops must be written *inside* functions
// carrying the target (omp simd loops are laid out for the ISA of the function they appear in,
// before inlining), which this arrangement guarantees; helpers they call are ordinary inline
// functions, compiled for the baseline and inlined. FMA is in the ISA but never emitted
// implicitly: sources are compiled with -ffp-contract=off.
#pragma once

#include <atomic>
#include <cstdint>

#define BK_ALWAYS_INLINE inline __attribute__((always_inline))
#define BK_ALWAYS_INLINE_LAMBDA __attribute__((always_inline))
#define BK_NOINLINE __attribute__((noinline))

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BK_HAVE_X86_64_V3 1
#define BK_BEGIN_X86_64_V3 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"arch=x86-64-v3\")")
#define BK_END_X86_64_V3 _Pragma("GCC pop_options")
#define BK_BEGIN_X86_64_V4 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"arch=x86-64-v4\")")
#define BK_END_X86_64_V4 _Pragma("GCC pop_options")
#else
#define BK_HAVE_X86_64_V3 0
#endif

namespace bitkernels {
namespace cpu {

using u32x8 = uint32_t __attribute__((vector_size(32)));
constexpr int kLanes = 8;

// Software prefetch distance, in elements: far enough to cover the memory latency at the loops'
// pace (~2 KB per fp32 array), near enough to stay in L1 (measured on the AdamW step: 256 ..
// 1024 all work). The kernels read seven or more streams at once, more than the hardware
// prefetchers keep in flight for one core; without these the steps reach 70-80% of the
// bandwidth they reach with them.
constexpr int64_t kPrefetchElements = 512;
// Elements per prefetching span of the vectorized (omp simd) loops.
constexpr int kPrefetchSpan = 64;

// Prefetches the lines of elements [first, first + count) of an array (none when base is null).
// A prefetch past the end of an array is harmless: prefetches never fault.
BK_ALWAYS_INLINE void prefetch_elements(const void* base, int64_t first, int count,
                                        int element_bytes) {
  if (base == nullptr) return;
  const char* const bytes = static_cast<const char*>(base) + first * element_bytes;
  for (int b = 0; b < count * element_bytes; b += 64) __builtin_prefetch(bytes + b, 0, 3);
}

// The line of element i + kPrefetchElements of an array (base not null): one vector's line of
// each array, as a loop that reads one line per array per vector gets there. Unchecked: callers
// prefetch only the arrays they read (step_avx512.h: Element::kStates), so the loops lose the
// compare and branch per array per vector that the compiler kept for a null test (no change in
// speed was measured; fewer instructions).
BK_ALWAYS_INLINE void prefetch_ahead(const void* base, int64_t i, int element_bytes) {
  __builtin_prefetch(static_cast<const char*>(base) + (i + kPrefetchElements) * element_bytes, 0,
                     3);
}

// The MXCSR bit of denormals-are-zero (torch.set_flush_denormal), under which getexp (the AVX-512
// kernels' depth bins) and d * 2^40 (the AVX2 groups', stats_avx2.h) would read subnormals as
// zero: those paths then leave the work to the loops that classify on bits.
constexpr unsigned kDenormalsAreZero = 0x40;

// The instruction sets the CPU kernels are compiled for, in order. kX86_64_V4Bf16 runs the v4
// kernels, and in them the paths that use AVX512-BF16 (the bf16 steps' rounding,
// step_avx512.h); they are a level of their own so that the tests run both.
enum class Isa : int { kBase = 0, kX86_64_V3 = 1, kX86_64_V4 = 2, kX86_64_V4Bf16 = 3 };

inline Isa detected_isa() {
#if BK_HAVE_X86_64_V3
  static const Isa isa = !__builtin_cpu_supports("x86-64-v4")
                             ? (__builtin_cpu_supports("x86-64-v3") ? Isa::kX86_64_V3 : Isa::kBase)
                         : __builtin_cpu_supports("avx512bf16") ? Isa::kX86_64_V4Bf16
                                                                : Isa::kX86_64_V4;
  return isa;
#else
  return Isa::kBase;
#endif
}

// The highest ISA the kernels may use (tests step through them); kX86_64_V4Bf16: no limit.
inline std::atomic<int>& isa_limit() {
  static std::atomic<int> limit{int(Isa::kX86_64_V4Bf16)};
  return limit;
}

inline Isa active_isa() {
  const int limit = isa_limit().load(std::memory_order_relaxed);
  return Isa(int(detected_isa()) < limit ? int(detected_isa()) : limit);
}

}  // namespace cpu
}  // namespace bitkernels

// BK_ISA_CALL(fn<Args>(args...)): the call, made in the namespace of the active ISA.
#if BK_HAVE_X86_64_V3
#define BK_ISA_CALL(...)                                                            \
  (::bitkernels::cpu::active_isa() >= ::bitkernels::cpu::Isa::kX86_64_V4   ? v4::__VA_ARGS__ \
   : ::bitkernels::cpu::active_isa() == ::bitkernels::cpu::Isa::kX86_64_V3 ? v3::__VA_ARGS__ \
                                                                           : base::__VA_ARGS__)
#else
#define BK_ISA_CALL(...) (base::__VA_ARGS__)
#endif
