// CUDA registrations of the bitkernels ops: argument checks, device guard and current stream,
// then the torch-free launchers of launch.h. Built only into bitkernels._C_cuda.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "launch.h"
#include "op_checks.h"
#include "python_module.h"

namespace bitkernels {
namespace {

cuda::StoredFormat stored_format(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat:
      return cuda::StoredFormat::kFp32;
    case c10::kBFloat16:
      return cuda::StoredFormat::kBf16;
    default:  // kHalf; other dtypes were rejected by the checks
      return cuda::StoredFormat::kFp16;
  }
}

void bitflip_stats_cuda(const at::Tensor& old, const at::Tensor& new_,
                        const std::optional<at::Tensor>& update, const at::Tensor& counters,
                        const at::Tensor& sums) {
  check_bitflip_stats_args(old, new_, update, counters, sums);
  const c10::cuda::CUDAGuard guard(old.device());
  const at::Tensor a = old.contiguous(), b = new_.contiguous();
  const at::Tensor d = update.has_value() ? update->contiguous() : at::Tensor();
  const cudaError_t err = cuda::launch_bitflip_stats(
      stored_format(a.scalar_type()), a.const_data_ptr(), b.const_data_ptr(),
      d.defined() ? d.const_data_ptr<float>() : nullptr, a.numel(),
      counters.mutable_data_ptr<int64_t>(), sums.mutable_data_ptr<double>(),
      c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "bitflip_stats: CUDA launch failed: ", cudaGetErrorString(err));
}

}  // namespace
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CUDA, m) {
  m.impl("bitflip_stats", &bitkernels::bitflip_stats_cuda);
}

BK_PYTHON_MODULE(_C_cuda)
