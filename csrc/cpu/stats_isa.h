// The statistics' per-ISA headers, for the loops of the fused steps (step_impl.h) and of
// bitflip_stats (bitflip_stats_impl.h): the position counters and the general loops' counting
// everywhere, the AVX2 groups with v3 and v4, the AVX-512 lanes and vectors with v4. Compiled
// once per ISA (for_each_isa.h): no include guard.
#include "position_counter.h"
#if BK_ISA_AVX2
#include "depth_window.h"
#endif
#include "count_general.h"
#if BK_ISA_AVX2
#include "stats_avx2.h"
#endif
#if BK_ISA_AVX512
#include "vec16.h"
#include "stats_avx512.h"
#endif
