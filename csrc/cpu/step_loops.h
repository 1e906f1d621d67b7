// The CPU steps' loops, compiled once per ISA (see simd.h), and what they need, without torch:
// the driver (step_kernels.h) and the in-L2 timing harness (bench/kernel_l2.cpp) include them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "bitkernels/bitstats.h"
#include "bitkernels/formats.h"
#include "bitkernels/rounding.h"
#include "bitkernels/rules.h"
#include "bitkernels/step.h"
#include "partial.h"
#include "simd.h"
#include "stats_block.h"

namespace bitkernels {
namespace cpu {

using ::bitkernels::StepTensor;

}  // namespace cpu
}  // namespace bitkernels

#if BK_HAVE_X86_64_V3
BK_BEGIN_X86_64_V4
#define BK_ISA_NS v4
#define BK_ISA_AVX2 1
#define BK_ISA_AVX512 1
#include "position_counter.h"
#include "depth_window.h"
#include "count_general.h"
#include "stats_avx2.h"
#include "vec16.h"
#include "stats_avx512.h"
#include "step_avx512.h"
#include "step_impl.h"
#undef BK_ISA_AVX512
#undef BK_ISA_AVX2
#undef BK_ISA_NS
BK_END_X86_64_V4
BK_BEGIN_X86_64_V3
#define BK_ISA_NS v3
#define BK_ISA_AVX2 1
#define BK_ISA_AVX512 0
#include "position_counter.h"
#include "depth_window.h"
#include "count_general.h"
#include "stats_avx2.h"
#include "step_impl.h"
#undef BK_ISA_AVX512
#undef BK_ISA_AVX2
#undef BK_ISA_NS
BK_END_X86_64_V3
#endif
#define BK_ISA_NS base
#define BK_ISA_AVX2 0
#define BK_ISA_AVX512 0
#include "position_counter.h"
#include "count_general.h"
#include "step_impl.h"
#undef BK_ISA_AVX512
#undef BK_ISA_AVX2
#undef BK_ISA_NS
