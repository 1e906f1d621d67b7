// CUDA kernel of bitkernels::bitflip_stats (torch-free; bindings.cpp launches it).
//
// Grid-stride over tiles of kThreads * kUnroll elements; the loop trip count is uniform across a
// block, so warp-synchronous primitives are safe inside it. Each thread bit-slices its words
// into a BitPositionCounter; at the end the block reduces and commits one atomic per counter.
#include <cuda_runtime.h>

#include <algorithm>

#include "bitkernels/bitstats.h"
#include "bitkernels/block_reduce.cuh"
#include "launch.h"

namespace bitkernels {
namespace cuda {
namespace {

namespace s = stats;

constexpr int kThreads = 256;
constexpr int kUnroll = 4;  // independent loads in flight per thread
constexpr int64_t kTile = int64_t(kThreads) * kUnroll;
// A thread's 16-bit fields count at most 65535 words.
constexpr int64_t kMaxTilesPerBlock = 65535 / kUnroll;
constexpr int kBlocksPerSm = 8;

// Per-thread values committed through block_commit: the 32 flip positions, then these.
constexpr int kChangedValue = 32, kLostValue = 33, kZeroValue = 34, kNonfiniteValue = 35;
constexpr int kNumValues = 36;

template <class F, bool kHasUpdate>
__global__ void __launch_bounds__(kThreads)
    bitflip_stats_kernel(const typename F::bits_t* __restrict__ old_bits,
                         const typename F::bits_t* __restrict__ new_bits,
                         const uint32_t* __restrict__ update_bits, int64_t n,
                         int64_t* __restrict__ counters, double* __restrict__ sums) {
  __shared__ uint32_t depth_hist[s::kDepthBins];
  __shared__ uint32_t count_scratch[kNumValues * (kThreads / 32)];
  __shared__ double sum_scratch[3 * (kThreads / 32)];
  if (kHasUpdate) {
    for (int j = threadIdx.x; j < s::kDepthBins; j += kThreads) depth_hist[j] = 0;
    __syncthreads();
  }

  s::BitPositionCounter<uint32_t> bits;
  bits.clear();
  int words_since_fold = 0;
  uint32_t changed = 0, lost = 0, zero = 0, nonfinite = 0;
  double sum_d2 = 0.0, sum_p2 = 0.0, sum_r2 = 0.0;

  for (int64_t tile = int64_t(blockIdx.x) * kTile; tile < n; tile += int64_t(gridDim.x) * kTile) {
    uint32_t a[kUnroll], b[kUnroll], d[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = tile + int64_t(u) * kThreads + threadIdx.x;
      valid[u] = i < n;
      a[u] = valid[u] ? uint32_t(old_bits[i]) : 0u;
      b[u] = valid[u] ? uint32_t(new_bits[i]) : 0u;
      if (kHasUpdate) d[u] = valid[u] ? update_bits[i] : 0u;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint32_t x = a[u] ^ b[u];
      bits.add(x);
      if (++words_since_fold == s::BitPositionCounter<uint32_t>::kNibbleWords) {
        bits.fold();
        words_since_fold = 0;
      }
      changed += x != 0u;
      if (kHasUpdate) {
        // Invalid lanes carry d = 0, old = new = 0: they count only as zero, masked here.
        lost += s::is_lost(d[u], x);
        zero += valid[u] && s::is_zero_update(d[u]);
        nonfinite += valid[u] && s::is_nonfinite<F>(d[u], b[u]);
        const bool moving = s::is_finite_update(d[u]) && !s::is_zero_update(d[u]);
        s::warp_histogram_add(depth_hist, moving ? s::depth_bin<F>(d[u], a[u]) : -1);
        if (valid[u] && s::feeds_sums<F>(d[u], a[u], b[u])) {
          const double dv = bits_float(d[u]);
          const double ov = to_float<F>(a[u]);
          const double nv = to_float<F>(b[u]);
          sum_d2 += dv * dv;
          sum_p2 += ov * ov;
          sum_r2 += (nv - ov) * (nv - ov);
        }
      }
    }
  }
  bits.fold();

  uint32_t values[kNumValues];
  int slots[kNumValues];
#pragma unroll
  for (int k = 0; k < 16; ++k) {
    values[k] = bits.half[k] & 0xFFFFu;
    values[k + 16] = bits.half[k] >> 16;
  }
#pragma unroll
  for (int k = 0; k < 32; ++k) slots[k] = s::kFlips + k;
  values[kChangedValue] = changed, slots[kChangedValue] = s::kChanged;
  values[kLostValue] = lost, slots[kLostValue] = s::kLost;
  values[kZeroValue] = zero, slots[kZeroValue] = s::kZero;
  values[kNonfiniteValue] = nonfinite, slots[kNonfiniteValue] = s::kNonfinite;
  s::block_commit<kThreads, uint32_t, uint64_t>(values, slots, count_scratch, counters);

  if (kHasUpdate) {
    for (int j = threadIdx.x; j < s::kDepthBins; j += kThreads) {
      if (depth_hist[j] != 0) s::atomic_add_to(counters + s::kDepth + j, depth_hist[j]);
    }
    const double partial_sums[3] = {sum_d2, sum_p2, sum_r2};
    const int sum_slots[3] = {s::kSumD2, s::kSumP2, s::kSumR2};
    s::block_commit<kThreads, double, double>(partial_sums, sum_slots, sum_scratch, sums);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    s::atomic_add_to(counters + s::kNumel, uint64_t(n));
    s::atomic_add_to(counters + s::kSteps, uint64_t(1));
  }
}

template <class F>
cudaError_t launch(const void* old_bits, const void* new_bits, const float* update, int64_t n,
                   int64_t* counters, double* sums, cudaStream_t stream) {
  int device = 0, sms = 1;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  const int64_t tiles = (n + kTile - 1) / kTile;
  const int64_t min_blocks = (tiles + kMaxTilesPerBlock - 1) / kMaxTilesPerBlock;
  const int64_t blocks =
      std::max<int64_t>({int64_t(1), min_blocks, std::min<int64_t>(tiles, int64_t(sms) * kBlocksPerSm)});
  using bits_t = typename F::bits_t;
  const auto* a = static_cast<const bits_t*>(old_bits);
  const auto* b = static_cast<const bits_t*>(new_bits);
  const auto* d = reinterpret_cast<const uint32_t*>(update);
  if (update != nullptr) {
    bitflip_stats_kernel<F, true><<<dim3(unsigned(blocks)), kThreads, 0, stream>>>(a, b, d, n, counters, sums);
  } else {
    bitflip_stats_kernel<F, false><<<dim3(unsigned(blocks)), kThreads, 0, stream>>>(a, b, d, n, counters, sums);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_bitflip_stats(StoredFormat format, const void* old_bits, const void* new_bits,
                                 const float* update, int64_t n, int64_t* counters, double* sums,
                                 cudaStream_t stream) {
  switch (format) {
    case StoredFormat::kFp32:
      return launch<Fp32>(old_bits, new_bits, update, n, counters, sums, stream);
    case StoredFormat::kBf16:
      return launch<Bf16>(old_bits, new_bits, update, n, counters, sums, stream);
    case StoredFormat::kFp16:
      return launch<Fp16>(old_bits, new_bits, update, n, counters, sums, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace bitkernels
