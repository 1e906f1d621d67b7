// The fused step kernel on CUDA, shared by the per-optimizer .cu files: one block per chunk of
// one tensor; each thread applies the element's rule (rules.h, via bitkernels/step.h), lands
// the update (rounding.h) and feeds its ThreadStats; the block commits one atomic per counter
// into the tensor's BitStats row. kTrack false compiles the statistics out.
//
// Each thread takes kStepIlp elements per iteration and loads all of them (parameter, gradient,
// compensation, state) before it stores any, as bitflip_stats.cu and torch's multi-tensor
// kernels do: one element at a time, the next element's loads could not pass this one's stores
// (the compiler cannot rule out aliasing), and the bytes in flight per SM came from occupancy
// alone, below what Little's law asks of an H100 (bench/RESULTS.md, GPU).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "bitkernels/bitstats.h"
#include "bitkernels/block_reduce.cuh"
#include "bitkernels/formats.h"
#include "bitkernels/rounding.h"
#include "bitkernels/step.h"
#include "launch.h"

namespace bitkernels {
namespace cuda {

constexpr int kStepThreads = 256;  // kStepChunk / kStepThreads words per thread: far below 65535
constexpr int kStepIlp = 4;        // elements per thread per iteration, loaded together
static_assert(kStepChunk % (kStepThreads * kStepIlp) == 0, "iterations tile a chunk");

template <class F>
__device__ __forceinline__ Landed land_any(float p, float d, uint32_t comp_bits,
                                           uint32_t random_bits, bool stochastic, bool kahan) {
  if (kahan) {
    return stochastic ? land<F, Rounding::kStochastic, true>(p, d, comp_bits, random_bits)
                      : land<F, Rounding::kNearest, true>(p, d, comp_bits, random_bits);
  }
  return stochastic ? land<F, Rounding::kStochastic, false>(p, d, comp_bits, random_bits)
                    : land<F, Rounding::kNearest, false>(p, d, comp_bits, random_bits);
}

// At least 3 blocks per SM: ptxas then holds the kernels with statistics to 80 registers,
// without spills in the loop (left to itself it gave bf16 AdamW 88, and only 2 blocks fit).
template <class F, class Element, class Hyper, bool kTrack>
__global__ void __launch_bounds__(kStepThreads, 3) step_kernel(StepLaunch args, Hyper h) {
  if (args.found_inf != nullptr && *args.found_inf != 0.0f) return;  // AMP: skip the step
  __shared__ uint32_t depth_hist[stats::kDepthBins];
  __shared__ uint32_t count_scratch[36 * (kStepThreads / 32)];
  __shared__ double sum_scratch[4 * (kStepThreads / 32)];
  if (kTrack) {
    for (int j = threadIdx.x; j < stats::kDepthBins; j += kStepThreads) depth_hist[j] = 0;
    __syncthreads();
  }
  using bits_t = typename F::bits_t;
  const int64_t chunk = blockIdx.x;
  const StepTensor t = args.tensors[args.chunks[2 * chunk]];
  const int64_t start = args.chunks[2 * chunk + 1];
  const int64_t end = t.numel < start + kStepChunk ? t.numel : start + kStepChunk;
  auto* param = static_cast<bits_t*>(t.param);
  const auto* grad = static_cast<const bits_t*>(t.grad);
  auto* comp = static_cast<bits_t*>(t.comp);
  const Element element = Element::of(h, t);
  const float scale = args.grad_scale != nullptr ? *args.grad_scale : 1.0f;
  stats::ThreadStats<F> mine;
  mine.init();
  constexpr int kStates = Element::kStates;
  for (int64_t base = start; base < end; base += kStepThreads * kStepIlp) {  // uniform trip count
    uint32_t old_bits[kStepIlp], grad_bits[kStepIlp], comp_bits[kStepIlp];
    float state[kStepIlp][kMaxStates];  // s0, s1, s2 of Element::apply
    bool valid[kStepIlp];
#pragma unroll
    for (int u = 0; u < kStepIlp; ++u) {
      const int64_t i = base + u * kStepThreads + threadIdx.x;
      valid[u] = i < end;
      old_bits[u] = valid[u] ? uint32_t(param[i]) : 0u;
      grad_bits[u] = valid[u] ? uint32_t(grad[i]) : 0u;
      comp_bits[u] = args.kahan && valid[u] ? uint32_t(comp[i]) : 0u;
#pragma unroll
      for (int k = 0; k < kMaxStates; ++k)
        state[u][k] = k < kStates && valid[u] ? t.state[k][i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kStepIlp; ++u) {
      const int64_t i = base + u * kStepThreads + threadIdx.x;
      const float p = to_float<F>(old_bits[u]);
      const float g = valid[u] ? to_float<F>(grad_bits[u]) / scale : 0.0f;  // as torch unscales
      const float d = valid[u] ? element.apply(p, g, state[u][0], state[u][1], state[u][2]) : 0.0f;
      const uint32_t random_bits = args.stochastic ? element_random(t.rng_key, uint64_t(i)) : 0u;
      const Landed landed =
          land_any<F>(p, d, comp_bits[u], random_bits, args.stochastic, args.kahan);
      if (valid[u]) {
        param[i] = bits_t(landed.new_bits);
        if (args.kahan) comp[i] = bits_t(landed.comp_bits);
#pragma unroll
        for (int k = 0; k < kStates; ++k) t.state[k][i] = state[u][k];
      }
      if (kTrack)
        mine.add(old_bits[u], valid[u] ? landed.new_bits : 0u,
                 valid[u] ? float_bits(landed.d) : 0u, g, valid[u], true, depth_hist);
    }
  }
  if (kTrack) {
    __syncthreads();  // the histogram is complete
    mine.template commit<kStepThreads>(t.counters, t.sums, count_scratch, sum_scratch, depth_hist,
                                       true, end - start, start == 0 ? 1 : 0);
  }
}

template <class F, class Element, class Hyper>
cudaError_t launch_step(const StepLaunch& args, const Hyper& h, cudaStream_t stream) {
  if (args.num_chunks == 0) return cudaSuccess;
  const dim3 grid(unsigned(args.num_chunks));
  if (args.track) {
    step_kernel<F, Element, Hyper, true><<<grid, kStepThreads, 0, stream>>>(args, h);
  } else {
    step_kernel<F, Element, Hyper, false><<<grid, kStepThreads, 0, stream>>>(args, h);
  }
  return cudaGetLastError();
}

// launch_step<F, Element> for the format of args.
template <class Element, class Hyper>
cudaError_t launch_for_format(const StepLaunch& args, const Hyper& h, cudaStream_t stream) {
  switch (args.format) {
    case StoredFormat::kFp32:
      return launch_step<Fp32, Element>(args, h, stream);
    case StoredFormat::kBf16:
      return launch_step<Bf16, Element>(args, h, stream);
    case StoredFormat::kFp16:
      return launch_step<Fp16, Element>(args, h, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace bitkernels
