// bitkernels::adam_step on the CPU: Adam and AdamW (torch.optim semantics) fused with the bit
// statistics, one parallel region per call.
#include <torch/library.h>

#include "op_checks.h"
#include "step_kernels.h"

namespace bitkernels {
namespace cpu {
namespace {

void adam_step_cpu(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
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
  if (params.empty() || step_skipped(found_inf)) return;
  std::vector<StepTensor> tensors =
      step_tensors(params, grads, {exp_avgs, exp_avg_sqs, max_exp_avg_sqs}, kahan_comps,
                   counters, sums, stat_rows, rng_keys);
  for (size_t i = 0; i < tensors.size(); ++i)
    tensors[i].adam = adam_step_scalars(step_sizes[i], bias_correction2_sqrts[i]);
  const AdamHyper h =
      adam_hyper(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize);
  dispatch_format(params[0].scalar_type(), [&](auto format) {
    using F = decltype(format);
    auto run = [&](auto with_amsgrad) {
      constexpr bool kAmsgrad = decltype(with_amsgrad)::value;
      run_step<F>(
          tensors,
          [&](const StepTensor& t) {
            return AdamElement<kAmsgrad>::of(h, t);
          },
          stochastic, !kahan_comps.empty(), counters.has_value(), scale_ptr(grad_scale));
    };
    amsgrad ? run(Bool<true>{}) : run(Bool<false>{});
  });
}

}  // namespace
}  // namespace cpu
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("adam_step", &bitkernels::cpu::adam_step_cpu);
}
