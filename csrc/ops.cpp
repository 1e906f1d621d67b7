// The op schemas of the bitkernels library, defined once. Device files register the kernels
// (TORCH_LIBRARY_IMPL) for CPU in this extension and for CUDA in bitkernels._C_cuda.
#include <vector>

#include <torch/library.h>

#include "bitkernels/bitstats.h"
#include "python_module.h"

namespace {

// The counter layout of bitstats.h, so Python can check that it mirrors the same slots.
std::vector<int64_t> stats_layout() {
  namespace s = bitkernels::stats;
  return {s::kFlips, s::kMaxWidth, s::kChanged,   s::kLost,      s::kZero,
          s::kNonfinite, s::kNumel, s::kSteps,    s::kDepth,     s::kDepthBins,
          s::kDepthMin, s::kNumCounters, s::kSumD2, s::kSumG2, s::kSumP2,
          s::kSumR2, s::kNumSums};
}

}  // namespace

TORCH_LIBRARY(bitkernels, m) {
  // Accumulates the bit statistics of old -> new into counters (int64, stats::kNumCounters) and
  // sums (float64, stats::kNumSums). Without `update` it fills flips, changed, numel and steps;
  // with the intended fp32 update d it also fills lost, zero, nonfinite, depth and the sums
  // sum_d2, sum_p2 and sum_r2.
  m.def(
      "bitflip_stats(Tensor old, Tensor new, Tensor? update, Tensor(a!) counters, "
      "Tensor(b!) sums) -> ()");
  m.def("stats_layout() -> int[]", &stats_layout);
}

BK_PYTHON_MODULE(_C)
