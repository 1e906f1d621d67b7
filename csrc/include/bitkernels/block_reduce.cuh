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

// Sums vals[c] over the block and atomically adds each total to out[slots[c]]. Per-thread
// values T are uint32 counts or doubles; totals are summed as Wide (uint64 for counts) and land
// in int64 counters or float64 sums. All threads of the block must call it.
// scratch: kCount * (kThreads / 32) elements.
template <int kThreads, class T, class Wide, class Out, int kCount>
__device__ __forceinline__ void block_commit(const T (&vals)[kCount], const int (&slots)[kCount],
                                             T* scratch, Out* out) {
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
    if (total != 0) atomic_add_to(out + slots[c], total);
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
