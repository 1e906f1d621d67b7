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

// Sums vals[0..kCount) over the block and atomically adds the totals to out[0..kCount) (int64
// counters). All threads of the block must call it. scratch: kCount * warps uint32.
template <int kCount, int kThreads>
__device__ __forceinline__ void block_commit_counts(const uint32_t (&vals)[kCount],
                                                    uint32_t* scratch, int64_t* out) {
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int c = 0; c < kCount; ++c) {
    const uint32_t total = warp_sum(vals[c]);
    if (lane == 0) scratch[c * kWarps + warp] = total;
  }
  __syncthreads();
  for (int c = threadIdx.x; c < kCount; c += kThreads) {
    unsigned long long total = 0;
    for (int w = 0; w < kWarps; ++w) total += scratch[c * kWarps + w];
    if (total != 0) atomicAdd(reinterpret_cast<unsigned long long*>(out + c), total);
  }
  __syncthreads();
}

// The same for float64 sums, vals[c] going to out[slots[c]]. scratch: kCount * warps doubles.
template <int kCount, int kThreads>
__device__ __forceinline__ void block_commit_sums(const double (&vals)[kCount],
                                                  const int (&slots)[kCount], double* scratch,
                                                  double* out) {
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int c = 0; c < kCount; ++c) {
    const double total = warp_sum(vals[c]);
    if (lane == 0) scratch[c * kWarps + warp] = total;
  }
  __syncthreads();
  for (int c = threadIdx.x; c < kCount; c += kThreads) {
    double total = 0;
    for (int w = 0; w < kWarps; ++w) total += scratch[c * kWarps + w];
    if (total != 0) atomicAdd(out + slots[c], total);
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
