// CUDA kernel of bitkernels::bitflip_stats (torch-free; bindings.cpp launches it).
//
// Grid-stride over tiles of kThreads * kUnroll elements; the loop trip count is uniform across a
// block, so warp-synchronous primitives are safe inside it. Each thread accumulates a
// ThreadStats; at the end the block reduces and commits one atomic per counter.
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
// A thread's 16-bit flip fields count at most 65535 words.
constexpr int64_t kMaxTilesPerBlock = 65535 / kUnroll;
constexpr int kBlocksPerSm = 8;

template <class F, bool kHasUpdate>
__global__ void __launch_bounds__(kThreads)
    bitflip_stats_kernel(const typename F::bits_t* __restrict__ old_bits,
                         const typename F::bits_t* __restrict__ new_bits,
                         const uint32_t* __restrict__ update_bits, int64_t n,
                         int64_t* __restrict__ counters, double* __restrict__ sums) {
  __shared__ uint32_t depth_hist[s::kDepthBins];
  __shared__ uint32_t count_scratch[36 * (kThreads / 32)];
  __shared__ double sum_scratch[4 * (kThreads / 32)];
  for (int j = threadIdx.x; j < s::kDepthBins; j += kThreads) depth_hist[j] = 0;
  __syncthreads();

  s::ThreadStats<F> mine;
  mine.init();
  for (int64_t tile = int64_t(blockIdx.x) * kTile; tile < n; tile += int64_t(gridDim.x) * kTile) {
    uint32_t a[kUnroll], b[kUnroll], d[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = tile + int64_t(u) * kThreads + threadIdx.x;
      valid[u] = i < n;
      a[u] = valid[u] ? uint32_t(old_bits[i]) : 0u;
      b[u] = valid[u] ? uint32_t(new_bits[i]) : 0u;
      d[u] = kHasUpdate && valid[u] ? update_bits[i] : 0u;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) mine.add(a[u], b[u], d[u], 0.0f, valid[u], kHasUpdate, depth_hist);
  }
  __syncthreads();  // the histogram is complete
  mine.template commit<kThreads>(counters, sums, count_scratch, sum_scratch, depth_hist,
                                 kHasUpdate, blockIdx.x == 0 ? n : 0, blockIdx.x == 0 ? 1 : 0);
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
  const int64_t blocks = std::max<int64_t>(
      {int64_t(1), min_blocks, std::min<int64_t>(tiles, int64_t(sms) * kBlocksPerSm)});
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
