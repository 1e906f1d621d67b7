// Torch-free entry points of the CUDA kernels: raw pointers and a stream, so the .cu files
// compile with nvcc alone. The torch-aware bindings (bindings.cpp) call these.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace bitkernels {
namespace cuda {

enum class StoredFormat { kFp32, kBf16, kFp16 };

// bitflip_stats on n elements: old/new are the stored bits of the format, update (nullable) the
// fp32 intended updates; counters/sums are BitStats buffers (stats::kNumCounters int64,
// stats::kNumSums float64) on the same device. Returns the launch status.
cudaError_t launch_bitflip_stats(StoredFormat format, const void* old_bits, const void* new_bits,
                                 const float* update, int64_t n, int64_t* counters, double* sums,
                                 cudaStream_t stream);

}  // namespace cuda
}  // namespace bitkernels
