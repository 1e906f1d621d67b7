// Block-level accumulation of per-thread statistics on CUDA: warp shuffles, then shared memory
// across warps, then one global atomic per counter per block (no per-element global atomics).
#pragma once

#include <cstdint>

#include "bitkernels/bitstats.h"

namespace bitkernels {
namespace stats {

constexpr unsigned kFullWarp = 0xFFFFFFFFu;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(kFullWarp, v, offset);
  return v;
}

__device__ __forceinline__ void atomic_add_to(int64_t* out, uint64_t v) {
  atomicAdd(reinterpret_cast<unsigned long long*>(out), (unsigned long long)v);
}
__device__ __forceinline__ void atomic_add_to(double* out, double v) { atomicAdd(out, v); }

// Sums vals[c] over the block and atomically adds each total to out[c]. Per-thread values T are
// uint32 counts or doubles; totals are summed as Wide (uint64 for counts) and land in int64
// counters or float64 sums. All threads of the block must call it.
// scratch: kCount * (kThreads / 32) elements.
template <int kThreads, class T, class Wide, class Out, int kCount>
__device__ __forceinline__ void block_commit(const T (&vals)[kCount], T* scratch, Out* out) {
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int c = 0; c < kCount; ++c) {
    const T total = warp_sum(vals[c]);
    if (lane == 0) scratch[c * kWarps + warp] = total;
  }
  __syncthreads();
  for (int c = threadIdx.x; c < kCount; c += kThreads) {
    Wide total = 0;
    for (int w = 0; w < kWarps; ++w) total += scratch[c * kWarps + w];
    if (total != 0) atomic_add_to(out + c, total);
  }
  __syncthreads();
}

// Adds 1 to hist[bin] for every lane of the warp with bin >= 0, with one shared-memory atomic
// per distinct bin in the warp (updates of a step cluster in a few depth bins).
__device__ __forceinline__ void warp_histogram_add(uint32_t* hist, int bin) {
  const unsigned peers = __match_any_sync(kFullWarp, bin);
  const int leader = __ffs(peers) - 1;
  if (bin >= 0 && int(threadIdx.x % 32) == leader) atomicAdd(hist + bin, uint32_t(__popc(peers)));
}

}  // namespace stats
}  // namespace bitkernels

namespace bitkernels {
namespace stats {

// One thread's statistics in a CUDA kernel whose loop trip count is uniform across the block
// (add() uses warp-synchronous primitives). The per-element definitions are element_stats();
// flips are bit-sliced (a thread may add at most 65535 words), the depth histogram lives in
// shared memory, sums are float64.
template <class F>
struct ThreadStats {
  BitPositionCounter<uint32_t> bits;
  int words_since_fold;
  uint32_t changed, lost, zero, nonfinite;
  double d2, g2, p2, r2;

  __device__ __forceinline__ void init() {
    bits.clear();
    words_since_fold = 0;
    changed = lost = zero = nonfinite = 0;
    d2 = g2 = p2 = r2 = 0.0;
  }

  // Adds one element (nothing for invalid lanes, which must still call). hist: the block's
  // shared kDepthBins histogram; with_update false: flips and changed only.
  __device__ __forceinline__ void add(uint32_t old_bits, uint32_t new_bits, uint32_t d_bits,
                                      float g, bool valid, bool with_update, uint32_t* hist) {
    const ElementStats e = element_stats<F>(old_bits, new_bits, d_bits, g);
    bits.add(valid ? e.flip_mask : 0u);
    if (++words_since_fold == BitPositionCounter<uint32_t>::kNibbleWords) {
      bits.fold();
      words_since_fold = 0;
    }
    changed += valid ? e.changed : 0u;
    if (!with_update) return;
    lost += valid ? e.lost : 0u;
    zero += valid ? e.zero : 0u;
    nonfinite += valid ? e.nonfinite : 0u;
    warp_histogram_add(hist, valid && e.depth_bin < kDepthBins ? e.depth_bin : -1);
    if (valid) {
      const double realized = double(e.q) - double(e.p);
      d2 += double(e.d) * double(e.d);
      g2 += double(e.g) * double(e.g);
      p2 += double(e.p) * double(e.p);
      r2 += realized * realized;
    }
  }

  // Block-level commit into one BitStats row: one atomic per nonzero counter. All threads call
  // it. numel / steps: what the block adds to those counters (thread 0 adds them).
  template <int kThreads>
  __device__ __forceinline__ void commit(int64_t* counters, double* sums, uint32_t* count_scratch,
                                         double* sum_scratch, const uint32_t* hist,
                                         bool with_update, int64_t numel, int64_t steps) {
    bits.fold();
    // Slots kFlips .. kNonfinite and kSumD2 .. kSumR2 are consecutive: one commit each.
    static_assert(kFlips == 0 && kChanged == 32 && kLost == 33 && kZero == 34 &&
                      kNonfinite == 35 && kSumD2 == 0 && kSumG2 == 1 && kSumP2 == 2 &&
                      kSumR2 == 3,
                  "bitstats.h layout");
    uint32_t values[36];
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      values[k] = bits.half[k] & 0xFFFFu;
      values[k + 16] = bits.half[k] >> 16;
    }
    values[32] = changed;
    values[33] = lost;
    values[34] = zero;
    values[35] = nonfinite;
    block_commit<kThreads, uint32_t, uint64_t>(values, count_scratch, counters);
    if (with_update) {
      for (int j = threadIdx.x; j < kDepthBins; j += kThreads)
        if (hist[j] != 0) atomic_add_to(counters + kDepth + j, uint64_t(hist[j]));
      const double partial[4] = {d2, g2, p2, r2};
      block_commit<kThreads, double, double>(partial, sum_scratch, sums);
    }
    if (threadIdx.x == 0) {
      if (numel != 0) atomic_add_to(counters + kNumel, uint64_t(numel));
      if (steps != 0) atomic_add_to(counters + kSteps, uint64_t(steps));
    }
  }
};

}  // namespace stats
}  // namespace bitkernels
