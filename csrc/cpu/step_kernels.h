// Host side of the fused optimizer steps on the CPU: the driver that splits all tensors of a
// call into chunks for one OpenMP parallel region. The loops are in step_impl.h, compiled per
// ISA; StepTensor and the elements binding a rule to a tensor's state are in bitkernels/step.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <omp.h>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include "step_loops.h"

namespace bitkernels {
namespace cpu {

// Elements per chunk, the unit of work of the parallel loop (and of one stats commit): at least
// kMinStepChunk, and more where the call is large enough for ~kChunksPerThread each. A chunk
// costs ~0.5 us beyond its elements with statistics (counters set up, finished and committed;
// measured on 256-element tensors) and starts its streams without prefetched lines: 64K-element
// chunks took AdamW fp32 16M with statistics 3% longer (bench/step_ratio.py, on/off 1.07-1.08
// against 1.04-1.05).
constexpr int64_t kMinStepChunk = 1 << 16;
constexpr int64_t kChunksPerThread = 16;  // enough for the dynamic schedule to even out

inline int64_t step_chunk(int64_t total, int64_t threads) {
  const int64_t even = total / (kChunksPerThread * threads);
  return std::max(kMinStepChunk, (even + kMinStepChunk - 1) / kMinStepChunk * kMinStepChunk);
}

// Splits every tensor into chunks, runs them in one parallel region (dynamic schedule: sizes
// are mixed) and commits each chunk's statistics to its tensor's row. run(t, begin, end, p)
// processes one chunk. Tensors with no elements still count a step.
template <class Run>
void for_each_chunk(const std::vector<StepTensor>& tensors, int width, bool track, Run run) {
  struct Chunk {
    int32_t tensor;
    int64_t begin, end;
  };
  int64_t total = 0;
  for (const StepTensor& t : tensors) total += t.numel;
  const int64_t max_threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t chunk_size = step_chunk(total, max_threads);
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const int64_t n = tensors[t].numel;
    for (int64_t b = 0; b < n; b += chunk_size)
      chunks.push_back({int32_t(t), b, std::min(n, b + chunk_size)});
    if (n == 0 && track) commit_atomic(Partial{}, width, true, 0, 1, tensors[t].counters,
                                       tensors[t].sums);
  }
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(
      {max_threads, int64_t(chunks.size()), total / kMinStepChunk + 1})));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t c = 0; c < int64_t(chunks.size()); ++c) {
    const Chunk& chunk = chunks[c];
    const StepTensor& t = tensors[chunk.tensor];
    Partial p;
    run(t, chunk.begin, chunk.end, p);
    if (track)
      commit_atomic(p, width, true, chunk.end - chunk.begin, chunk.begin == 0 ? 1 : 0,
                    t.counters, t.sums);
  }
}

template <bool V>
using Bool = std::integral_constant<bool, V>;
template <Rounding V>
using Mode = std::integral_constant<Rounding, V>;

// Runs one step of the rule made by make_element(tensor) over all tensors, turning the run-time
// choices (rounding, Kahan, statistics) into template arguments. fp32 parameters are stored
// exactly: rounding and Kahan only apply to 16-bit formats.
template <class F, class MakeElement>
void run_step(const std::vector<StepTensor>& tensors, const MakeElement& make_element,
              bool stochastic, bool kahan, bool track, const float* grad_scale) {
  auto go = [&](auto mode, auto with_kahan, auto with_stats) {
    constexpr Rounding kMode = decltype(mode)::value;
    constexpr bool kKahan = decltype(with_kahan)::value;
    constexpr bool kTrack = decltype(with_stats)::value;
    for_each_chunk(tensors, F::kWidth, kTrack,
                   [&](const StepTensor& t, int64_t begin, int64_t end, Partial& p) {
                     const auto element = make_element(t);
                     BK_ISA_CALL(step_range<F, kMode, kKahan, kTrack>(element, t, begin, end,
                                                                       grad_scale, p));
                   });
  };
  auto with_track = [&](auto mode, auto with_kahan) {
    track ? go(mode, with_kahan, Bool<true>{}) : go(mode, with_kahan, Bool<false>{});
  };
  if constexpr (std::is_same_v<F, Fp32>) {
    with_track(Mode<Rounding::kNearest>{}, Bool<false>{});
  } else {
    auto with_mode = [&](auto with_kahan) {
      stochastic ? with_track(Mode<Rounding::kStochastic>{}, with_kahan)
                 : with_track(Mode<Rounding::kNearest>{}, with_kahan);
    };
    kahan ? with_mode(Bool<true>{}) : with_mode(Bool<false>{});
  }
}

// Whether AMP found an inf/NaN gradient: the step then changes nothing.
inline bool step_skipped(const std::optional<at::Tensor>& found_inf) {
  return found_inf.has_value() && found_inf->item<float>() != 0.0f;
}

inline const float* scale_ptr(const std::optional<at::Tensor>& grad_scale) {
  return grad_scale.has_value() ? grad_scale->const_data_ptr<float>() : nullptr;
}

// Calls body(Fp32{} / Bf16{} / Fp16{}) for the dtype of the parameters.
template <class Body>
void dispatch_format(c10::ScalarType dtype, Body body) {
  switch (dtype) {
    case c10::kFloat:
      return body(Fp32{});
    case c10::kBFloat16:
      return body(Bf16{});
    default:  // kHalf: the checks rejected every other dtype
      return body(Fp16{});
  }
}

}  // namespace cpu
}  // namespace bitkernels
