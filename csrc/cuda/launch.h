// Torch-free entry points of the CUDA kernels: raw pointers and a stream, so the .cu files
// compile with nvcc alone. The torch-aware bindings (bindings.cpp) call these.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "bitkernels/rules.h"
#include "bitkernels/step.h"

namespace bitkernels {
namespace cuda {

enum class StoredFormat { kFp32, kBf16, kFp16 };

// bitflip_stats on n elements: old/new are the stored bits of the format, update (nullable) the
// fp32 intended updates; counters/sums are BitStats buffers (stats::kNumCounters int64,
// stats::kNumSums float64) on the same device. Returns the launch status.
cudaError_t launch_bitflip_stats(StoredFormat format, const void* old_bits, const void* new_bits,
                                 const float* update, int64_t n, int64_t* counters, double* sums,
                                 cudaStream_t stream);

// Elements per chunk of a step launch: one block per chunk of one tensor.
constexpr int64_t kStepChunk = 16384;

// One fused step over a list of tensors of one format. tensors (count) and chunks (num_chunks
// pairs: tensor index, first element; one chunk per kStepChunk elements, one for an empty
// tensor) are device arrays. grad_scale / found_inf: device scalars or null; with found_inf
// nonzero the kernel writes nothing.
struct StepLaunch {
  StoredFormat format;
  const StepTensor* tensors;
  const int64_t* chunks;
  int64_t num_chunks;
  const float* grad_scale;
  const float* found_inf;
  bool stochastic;
  bool kahan;
  bool track;
};

cudaError_t launch_sgd_step(const StepLaunch& launch, const SgdHyper& h, cudaStream_t stream);
cudaError_t launch_adam_step(const StepLaunch& launch, const AdamHyper& h, cudaStream_t stream);
cudaError_t launch_lion_step(const StepLaunch& launch, const LionHyper& h, cudaStream_t stream);

}  // namespace cuda
}  // namespace bitkernels
