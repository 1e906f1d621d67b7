// The arguments of the fused step ops, shared by the CPU and CUDA bindings: one parameter list
// per op (the schema of ops.cpp; *_ARGUMENTS forwards it) and the function that checks the
// arguments and builds the StepTensor list (empty when there are no parameters).
#pragma once

#include <initializer_list>
#include <optional>
#include <vector>

#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>

#include "bitkernels/bitstats.h"
#include "bitkernels/rules.h"
#include "bitkernels/step.h"
#include "op_checks.h"

#define BK_SGD_STEP_PARAMS                                                                     \
  (at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,     \
            at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,            \
            const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,                 \
            at::IntArrayRef rng_keys, c10::List<bool> first_step,                             \
            const std::optional<at::Tensor>& grad_scale,                                      \
            const std::optional<at::Tensor>& found_inf, double lr, double momentum,           \
            double dampening, double weight_decay, bool nesterov, bool maximize,              \
            bool stochastic)
#define BK_SGD_STEP_ARGUMENTS                                                                  \
  params, grads, momentum_buffers, kahan_comps, counters, sums, stat_rows, rng_keys,           \
      first_step, grad_scale, found_inf, lr, momentum, dampening, weight_decay, nesterov,      \
      maximize, stochastic

#define BK_ADAM_STEP_PARAMS                                                                    \
  (at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,             \
            at::TensorList exp_avg_sqs, at::TensorList max_exp_avg_sqs,                       \
            at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,            \
            const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,                 \
            at::IntArrayRef rng_keys, at::ArrayRef<double> step_sizes,                        \
            at::ArrayRef<double> bias_correction2_sqrts,                                      \
            const std::optional<at::Tensor>& grad_scale,                                      \
            const std::optional<at::Tensor>& found_inf, double lr, double beta1,              \
            double beta2, double eps, double weight_decay, bool decoupled, bool amsgrad,      \
            bool maximize, bool stochastic)
#define BK_ADAM_STEP_ARGUMENTS                                                                 \
  params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, kahan_comps, counters, sums,          \
      stat_rows, rng_keys, step_sizes, bias_correction2_sqrts, grad_scale, found_inf, lr,      \
      beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize, stochastic

#define BK_LION_STEP_PARAMS                                                                    \
  (at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,             \
            at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,            \
            const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,                 \
            at::IntArrayRef rng_keys, const std::optional<at::Tensor>& grad_scale,            \
            const std::optional<at::Tensor>& found_inf, double lr, double beta1,              \
            double beta2, double weight_decay, bool maximize, bool stochastic)
#define BK_LION_STEP_ARGUMENTS                                                                 \
  params, grads, exp_avgs, kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale,       \
      found_inf, lr, beta1, beta2, weight_decay, maximize, stochastic

namespace bitkernels {

// StepTensor views of a checked call: states[k][i] becomes tensors[i].state[k].
inline std::vector<StepTensor> step_tensors(at::TensorList params, at::TensorList grads,
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
    for (const at::TensorList& list : states) {
      t.state[k++] = list.empty() ? nullptr : list[i].data_ptr<float>();
    }
    t.numel = params[i].numel();
    t.rng_key = uint32_t(rng_keys[i]);
    if (counters.has_value()) {
      t.counters = counters->data_ptr<int64_t>() + stat_rows[i] * stats::kNumCounters;
      t.sums = sums->data_ptr<double>() + stat_rows[i] * stats::kNumSums;
    }
  }
  return out;
}

inline std::vector<StepTensor> sgd_step_tensors BK_SGD_STEP_PARAMS {
  const bool has_momentum = momentum != 0.0;
  check_step_args("sgd_step", params, grads, {{"momentum_buffers", momentum_buffers, has_momentum}},
                  kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale, found_inf);
  TORCH_CHECK_VALUE(first_step.size() == params.size(),
                    "sgd_step: first_step needs one entry per param");
  std::vector<StepTensor> tensors = step_tensors(params, grads, {momentum_buffers}, kahan_comps,
                                                 counters, sums, stat_rows, rng_keys);
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].first = flag(first_step[i]);
  return tensors;
}

inline std::vector<StepTensor> adam_step_tensors BK_ADAM_STEP_PARAMS {
  check_step_args("adam_step", params, grads,
                  {{"exp_avgs", exp_avgs, true},
                   {"exp_avg_sqs", exp_avg_sqs, true},
                   {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}},
                  kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale, found_inf);
  TORCH_CHECK_VALUE(step_sizes.size() == params.size() &&
                        bias_correction2_sqrts.size() == params.size(),
                    "adam_step: step_sizes and bias_correction2_sqrts need one entry per param");
  std::vector<StepTensor> tensors =
      step_tensors(params, grads, {exp_avgs, exp_avg_sqs, max_exp_avg_sqs}, kahan_comps,
                   counters, sums, stat_rows, rng_keys);
  for (size_t i = 0; i < tensors.size(); ++i)
    tensors[i].adam = adam_step_scalars(step_sizes[i], bias_correction2_sqrts[i]);
  return tensors;
}

inline std::vector<StepTensor> lion_step_tensors BK_LION_STEP_PARAMS {
  check_step_args("lion_step", params, grads, {{"exp_avgs", exp_avgs, true}}, kahan_comps,
                  counters, sums, stat_rows, rng_keys, grad_scale, found_inf);
  return step_tensors(params, grads, {exp_avgs}, kahan_comps, counters, sums, stat_rows,
                      rng_keys);
}

}  // namespace bitkernels
