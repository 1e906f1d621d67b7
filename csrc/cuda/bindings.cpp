// CUDA registrations of the bitkernels ops: argument checks, device guard and current stream,
// then the torch-free launchers of launch.h. Built only into bitkernels._C_cuda.
#include <cstring>
#include <vector>

#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "launch.h"
#include "op_checks.h"
#include "step_args.h"
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

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
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
  check_launch("bitflip_stats", err);
}

// The device-side tables of a step call: StepTensor per tensor and the chunk list. They are
// copied to the device on the current stream, ordered before the kernel. The host side is
// pinned memory from torch's caching host allocator and the copy is non-blocking: a copy from
// pageable memory would synchronize the stream at every step, and the host could no longer queue
// work ahead of the GPU. The allocator keeps the pinned block until the copy has completed.
struct DeviceTables {
  at::Tensor storage;
  cuda::StepLaunch launch;
};

DeviceTables device_tables(std::vector<StepTensor> tensors, c10::ScalarType dtype,
                           c10::Device device, const std::optional<at::Tensor>& grad_scale,
                           const std::optional<at::Tensor>& found_inf, bool stochastic,
                           bool kahan, bool track) {
  std::vector<int64_t> chunks;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const int64_t n = tensors[t].numel;
    for (int64_t start = 0; start < (n > 0 ? n : 1); start += cuda::kStepChunk) {
      chunks.push_back(int64_t(t));
      chunks.push_back(start);
    }
  }
  const size_t tensor_bytes = tensors.size() * sizeof(StepTensor);
  const size_t chunk_offset = (tensor_bytes + 15) / 16 * 16;
  const size_t total = chunk_offset + chunks.size() * sizeof(int64_t);
  at::Tensor host =
      at::empty({int64_t(total)}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  std::memcpy(host.data_ptr(), tensors.data(), tensor_bytes);
  std::memcpy(host.data_ptr<uint8_t>() + chunk_offset, chunks.data(), chunks.size() * sizeof(int64_t));
  DeviceTables out;
  out.storage = at::empty({int64_t(total)}, at::TensorOptions().dtype(at::kByte).device(device));
  out.storage.copy_(host, /*non_blocking=*/true);
  const uint8_t* base = out.storage.const_data_ptr<uint8_t>();
  out.launch.format = stored_format(dtype);
  out.launch.tensors = reinterpret_cast<const StepTensor*>(base);
  out.launch.chunks = reinterpret_cast<const int64_t*>(base + chunk_offset);
  out.launch.num_chunks = int64_t(chunks.size() / 2);
  out.launch.grad_scale = grad_scale.has_value() ? grad_scale->const_data_ptr<float>() : nullptr;
  out.launch.found_inf = found_inf.has_value() ? found_inf->const_data_ptr<float>() : nullptr;
  const bool low_precision = dtype != c10::kFloat;
  out.launch.stochastic = stochastic && low_precision;
  out.launch.kahan = kahan && low_precision;
  out.launch.track = track;
  return out;
}

// One step launch for the tensors of a checked call (nothing to do without tensors).
template <class Launch>
void launch_step(const char* op, std::vector<StepTensor> tensors, at::TensorList params,
                 at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,
                 const std::optional<at::Tensor>& grad_scale,
                 const std::optional<at::Tensor>& found_inf, bool stochastic, Launch launch) {
  if (tensors.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  const DeviceTables tables =
      device_tables(std::move(tensors), params[0].scalar_type(), params[0].device(), grad_scale,
                    found_inf, stochastic, !kahan_comps.empty(), counters.has_value());
  check_launch(op, launch(tables.launch, c10::cuda::getCurrentCUDAStream()));
}

void sgd_step_cuda BK_SGD_STEP_PARAMS {
  const SgdHyper h = sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, maximize);
  launch_step("sgd_step", sgd_step_tensors(BK_SGD_STEP_ARGUMENTS), params, kahan_comps, counters,
              grad_scale, found_inf, stochastic, [&](const cuda::StepLaunch& args, cudaStream_t s) {
                return cuda::launch_sgd_step(args, h, s);
              });
}

void adam_step_cuda BK_ADAM_STEP_PARAMS {
  const AdamHyper h = adam_hyper(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize);
  launch_step("adam_step", adam_step_tensors(BK_ADAM_STEP_ARGUMENTS), params, kahan_comps,
              counters, grad_scale, found_inf, stochastic,
              [&](const cuda::StepLaunch& args, cudaStream_t s) {
                return cuda::launch_adam_step(args, h, s);
              });
}

void lion_step_cuda BK_LION_STEP_PARAMS {
  const LionHyper h = lion_hyper(lr, beta1, beta2, weight_decay, maximize);
  launch_step("lion_step", lion_step_tensors(BK_LION_STEP_ARGUMENTS), params, kahan_comps,
              counters, grad_scale, found_inf, stochastic,
              [&](const cuda::StepLaunch& args, cudaStream_t s) {
                return cuda::launch_lion_step(args, h, s);
              });
}

}  // namespace
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CUDA, m) {
  m.impl("bitflip_stats", &bitkernels::bitflip_stats_cuda);
  m.impl("sgd_step", &bitkernels::sgd_step_cuda);
  m.impl("adam_step", &bitkernels::adam_step_cuda);
  m.impl("lion_step", &bitkernels::lion_step_cuda);
}

BK_PYTHON_MODULE(_C_cuda, nullptr)
