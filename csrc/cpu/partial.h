// Per-thread (per-chunk) partial statistics of the CPU kernels and their commit to a BitStats
// buffer row: one atomic add per nonzero counter.
#pragma once

#include <cstdint>

#include "bitkernels/bitstats.h"

namespace bitkernels {
namespace cpu {

struct Partial {
  int64_t flips[32] = {};  // positions in a 32-bit word; 16-bit formats fold k+16 onto k
  int64_t changed = 0, lost = 0, zero = 0, nonfinite = 0;
  int64_t depth[stats::kDepthBins] = {};
  double sums[stats::kNumSums] = {};

  void add(const Partial& o) {
    for (int k = 0; k < 32; ++k) flips[k] += o.flips[k];
    changed += o.changed;
    lost += o.lost;
    zero += o.zero;
    nonfinite += o.nonfinite;
    for (int j = 0; j < stats::kDepthBins; ++j) depth[j] += o.depth[j];
    for (int j = 0; j < stats::kNumSums; ++j) sums[j] += o.sums[j];
  }
};

// Adds p to one BitStats row. numel elements and `steps` steps are counted. Safe to call from
// several threads for the same row.
inline void commit_atomic(const Partial& p, int width, bool with_update, int64_t numel,
                          int64_t steps, int64_t* counters, double* sums) {
  auto add = [](int64_t* slot, int64_t v) {
    if (v != 0) __atomic_fetch_add(slot, v, __ATOMIC_RELAXED);
  };
  for (int k = 0; k < width; ++k)
    add(counters + stats::kFlips + k, p.flips[k] + (width == 16 ? p.flips[k + 16] : 0));
  add(counters + stats::kChanged, p.changed);
  add(counters + stats::kNumel, numel);
  add(counters + stats::kSteps, steps);
  if (!with_update) return;
  add(counters + stats::kLost, p.lost);
  add(counters + stats::kZero, p.zero);
  add(counters + stats::kNonfinite, p.nonfinite);
  for (int j = 0; j < stats::kDepthBins; ++j) add(counters + stats::kDepth + j, p.depth[j]);
  for (int j = 0; j < stats::kNumSums; ++j) {
    if (p.sums[j] != 0.0) {
#pragma omp atomic
      sums[j] += p.sums[j];
    }
  }
}

}  // namespace cpu
}  // namespace bitkernels
