// The fused step kernel on CUDA, shared by the per-optimizer .cu files: one block per chunk of
// one tensor; each thread applies the element's rule (rules.h, via bitkernels/step.h), lands
// the update (rounding.h) and feeds its ThreadStats; the block commits one atomic per counter
// into the tensor's BitStats row. kTrack false compiles the statistics out.
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

template <class F, class Element, class Hyper, bool kTrack>
__global__ void __launch_bounds__(kStepThreads) step_kernel(StepLaunch args, Hyper h) {
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
  for (int64_t base = start; base < end; base += kStepThreads) {  // uniform trip count
    const int64_t i = base + threadIdx.x;
    const bool valid = i < end;
    const uint32_t old_bits = valid ? uint32_t(param[i]) : 0u;
    const float p = to_float<F>(old_bits);
    const float g = valid ? to_float<F>(grad[i]) / scale : 0.0f;  // unscaled as torch does
    const float d = valid ? element(i, p, g) : 0.0f;
    const uint32_t random_bits = args.stochastic ? element_random(t.rng_key, uint64_t(i)) : 0u;
    const uint32_t comp_bits = args.kahan && valid ? uint32_t(comp[i]) : 0u;
    const Landed landed = land_any<F>(p, d, comp_bits, random_bits, args.stochastic, args.kahan);
    if (valid) {
      param[i] = bits_t(landed.new_bits);
      if (args.kahan) comp[i] = bits_t(landed.comp_bits);
    }
    if (kTrack)
      mine.add(old_bits, valid ? landed.new_bits : 0u, valid ? float_bits(landed.d) : 0u, g,
               valid, true, depth_hist);
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
