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
// copied to the device on the current stream; the copy is ordered before the kernel.
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
  at::Tensor host = at::empty({int64_t(total)}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(host.data_ptr(), tensors.data(), tensor_bytes);
  std::memcpy(host.data_ptr<uint8_t>() + chunk_offset, chunks.data(), chunks.size() * sizeof(int64_t));
  DeviceTables out;
  out.storage = host.to(device);
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

// StepTensor views of a checked step call (as the CPU's step_tensors, for device pointers).
std::vector<StepTensor> step_tensors(at::TensorList params, at::TensorList grads,
                                     std::initializer_list<at::TensorList> states,
                                     at::TensorList kahan_comps,
                                     const std::optional<at::Tensor>& counters,
                                     const std::optional<at::Tensor>& sums,
                                     at::IntArrayRef stat_rows, at::IntArrayRef rng_keys) {
  std::vector<StepTensor> out(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    StepTensor& t = out[i];
    t.param = params[i].data_ptr();
    t.grad = grads[i].const_data_ptr();
    t.comp = kahan_comps.empty() ? nullptr : kahan_comps[i].data_ptr();
    int k = 0;
    for (const at::TensorList& list : states) t.state[k++] = list.empty() ? nullptr : list[i].data_ptr<float>();
    t.numel = params[i].numel();
    t.rng_key = uint32_t(rng_keys[i]);
    if (counters.has_value()) {
      t.counters = counters->data_ptr<int64_t>() + stat_rows[i] * stats::kNumCounters;
      t.sums = sums->data_ptr<double>() + stat_rows[i] * stats::kNumSums;
    }
  }
  return out;
}

void sgd_step_cuda(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                   at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,
                   const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,
                   at::IntArrayRef rng_keys, c10::List<bool> first_step,
                   const std::optional<at::Tensor>& grad_scale,
                   const std::optional<at::Tensor>& found_inf, double lr, double momentum,
                   double dampening, double weight_decay, bool nesterov, bool maximize,
                   bool stochastic) {
  const bool has_momentum = momentum != 0.0;
  check_step_args("sgd_step", params, grads, {{"momentum_buffers", momentum_buffers, has_momentum}},
                  kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale, found_inf);
  TORCH_CHECK_VALUE(first_step.size() == params.size(),
                    "sgd_step: first_step needs one entry per param");
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  std::vector<StepTensor> tensors = step_tensors(params, grads, {momentum_buffers}, kahan_comps,
                                                 counters, sums, stat_rows, rng_keys);
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].first = flag(first_step[i]);
  const DeviceTables tables =
      device_tables(std::move(tensors), params[0].scalar_type(), params[0].device(), grad_scale,
                    found_inf, stochastic, !kahan_comps.empty(), counters.has_value());
  check_launch("sgd_step", cuda::launch_sgd_step(
      tables.launch, sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, maximize),
      c10::cuda::getCurrentCUDAStream()));
}

void adam_step_cuda(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                    at::TensorList exp_avg_sqs, at::TensorList max_exp_avg_sqs,
                    at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,
                    const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,
                    at::IntArrayRef rng_keys, at::ArrayRef<double> step_sizes,
                    at::ArrayRef<double> bias_correction2_sqrts,
                    const std::optional<at::Tensor>& grad_scale,
                    const std::optional<at::Tensor>& found_inf, double lr, double beta1,
                    double beta2, double eps, double weight_decay, bool decoupled, bool amsgrad,
                    bool maximize, bool stochastic) {
  check_step_args("adam_step", params, grads,
                  {{"exp_avgs", exp_avgs, true},
                   {"exp_avg_sqs", exp_avg_sqs, true},
                   {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}},
                  kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale, found_inf);
  TORCH_CHECK_VALUE(step_sizes.size() == params.size() &&
                        bias_correction2_sqrts.size() == params.size(),
                    "adam_step: step_sizes and bias_correction2_sqrts need one entry per param");
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  std::vector<StepTensor> tensors =
      step_tensors(params, grads, {exp_avgs, exp_avg_sqs, max_exp_avg_sqs}, kahan_comps,
                   counters, sums, stat_rows, rng_keys);
  for (size_t i = 0; i < tensors.size(); ++i)
    tensors[i].adam = adam_step_scalars(step_sizes[i], bias_correction2_sqrts[i]);
  const DeviceTables tables =
      device_tables(std::move(tensors), params[0].scalar_type(), params[0].device(), grad_scale,
                    found_inf, stochastic, !kahan_comps.empty(), counters.has_value());
  check_launch("adam_step", cuda::launch_adam_step(
      tables.launch,
      adam_hyper(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize),
      c10::cuda::getCurrentCUDAStream()));
}

void lion_step_cuda(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                    at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,
                    const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,
                    at::IntArrayRef rng_keys, const std::optional<at::Tensor>& grad_scale,
                    const std::optional<at::Tensor>& found_inf, double lr, double beta1,
                    double beta2, double weight_decay, bool maximize, bool stochastic) {
  check_step_args("lion_step", params, grads, {{"exp_avgs", exp_avgs, true}}, kahan_comps,
                  counters, sums, stat_rows, rng_keys, grad_scale, found_inf);
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  const DeviceTables tables = device_tables(
      step_tensors(params, grads, {exp_avgs}, kahan_comps, counters, sums, stat_rows, rng_keys),
      params[0].scalar_type(), params[0].device(), grad_scale, found_inf, stochastic,
      !kahan_comps.empty(), counters.has_value());
  check_launch("lion_step", cuda::launch_lion_step(
      tables.launch, lion_hyper(lr, beta1, beta2, weight_decay, maximize),
      c10::cuda::getCurrentCUDAStream()));
}

}  // namespace
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CUDA, m) {
  m.impl("bitflip_stats", &bitkernels::bitflip_stats_cuda);
  m.impl("sgd_step", &bitkernels::sgd_step_cuda);
  m.impl("adam_step", &bitkernels::adam_step_cuda);
  m.impl("lion_step", &bitkernels::lion_step_cuda);
}

BK_PYTHON_MODULE(_C_cuda)
