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
#include "grad_unscale.h"
#include "partial.h"
#include "simd.h"
#include "stats_block.h"

namespace bitkernels {
namespace cpu {

using ::bitkernels::StepTensor;

}  // namespace cpu
}  // namespace bitkernels

#define BK_ISA_LOOPS "step_impl.h"
#include "for_each_isa.h"
#undef BK_ISA_LOOPS
