// Host SIMD support for the CPU kernels.
//
// Vector types: 8 x uint32 (GCC/Clang vector extensions).
//
// ISA dispatch: each kernel's loops live in an "impl" header without include guard, written in
// `namespace BK_ISA_NS`. A kernel's .cpp includes every header the impl needs first, then the
// impl twice: inside BK_BEGIN_X86_64_V3 / BK_END_X86_64_V3 as namespace v3 (AVX2, FMA, F16C,
// BMI), and plainly as namespace base. BK_ISA_CALL picks at run time. The loops must be written
// *inside* functions carrying the target (omp simd loops are laid out for the ISA of the
// function they appear in, before inlining), which this arrangement guarantees; helpers they
// call are ordinary inline functions, compiled for the baseline and inlined. FMA is in the ISA
// but never emitted: sources are compiled with -ffp-contract=off.
#pragma once

#include <cstdint>

#define BK_ALWAYS_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BK_HAVE_X86_64_V3 1
#define BK_BEGIN_X86_64_V3 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"arch=x86-64-v3\")")
#define BK_END_X86_64_V3 _Pragma("GCC pop_options")
#else
#define BK_HAVE_X86_64_V3 0
#endif

namespace bitkernels {
namespace cpu {

using u32x8 = uint32_t __attribute__((vector_size(32)));
constexpr int kLanes = 8;

inline bool has_x86_64_v3() {
#if BK_HAVE_X86_64_V3
  static const bool supported = __builtin_cpu_supports("x86-64-v3");
  return supported;
#else
  return false;
#endif
}

}  // namespace cpu
}  // namespace bitkernels

// BK_ISA_CALL(fn<Args>(args...)): the call, made in namespace v3 on x86-64-v3 CPUs and in
// namespace base otherwise.
#if BK_HAVE_X86_64_V3
#define BK_ISA_CALL(...) \
  (::bitkernels::cpu::has_x86_64_v3() ? v3::__VA_ARGS__ : base::__VA_ARGS__)
#else
#define BK_ISA_CALL(...) (base::__VA_ARGS__)
#endif
