// Compiles one kernel's loops once per ISA (see simd.h): includes the header named by
// BK_ISA_LOOPS as namespace v3 in the AVX2 region and as v4 in the AVX-512 region (x86-64 with
// GCC or Clang; v3 first, so that v4 may call its loops), then plainly as namespace base, with
// BK_ISA_AVX2 and BK_ISA_AVX512 saying which vector headers that one may include. No include
// guard: a kernel defines BK_ISA_LOOPS, includes this once, after simd.h and the guarded headers
// its loops need, and undefines it.
#if BK_HAVE_X86_64_V3
BK_BEGIN_X86_64_V3
#define BK_ISA_NS v3
#define BK_ISA_AVX2 1
#define BK_ISA_AVX512 0
#include BK_ISA_LOOPS
#undef BK_ISA_AVX512
#undef BK_ISA_AVX2
#undef BK_ISA_NS
BK_END_X86_64_V3
BK_BEGIN_X86_64_V4
#define BK_ISA_NS v4
#define BK_ISA_AVX2 1
#define BK_ISA_AVX512 1
#include BK_ISA_LOOPS
#undef BK_ISA_AVX512
#undef BK_ISA_AVX2
#undef BK_ISA_NS
BK_END_X86_64_V4
#endif
#define BK_ISA_NS base
#define BK_ISA_AVX2 0
#define BK_ISA_AVX512 0
#include BK_ISA_LOOPS
#undef BK_ISA_AVX512
#undef BK_ISA_AVX2
#undef BK_ISA_NS
