// bitkernels::lion_step on the CPU: Lion (sign of the interpolated momentum, decoupled weight
// decay) fused with the bit statistics.
#include <torch/library.h>

#include "op_checks.h"
#include "step_kernels.h"

namespace bitkernels {
namespace cpu {
namespace {

void lion_step_cpu(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                   at::TensorList kahan_comps, const std::optional<at::Tensor>& counters,
                   const std::optional<at::Tensor>& sums, at::IntArrayRef stat_rows,
                   at::IntArrayRef rng_keys, const std::optional<at::Tensor>& grad_scale,
                   const std::optional<at::Tensor>& found_inf, double lr, double beta1,
                   double beta2, double weight_decay, bool maximize, bool stochastic) {
  check_step_args("lion_step", params, grads, {{"exp_avgs", exp_avgs, true}}, kahan_comps,
                  counters, sums, stat_rows, rng_keys, grad_scale, found_inf);
  if (params.empty() || step_skipped(found_inf)) return;
  const std::vector<StepTensor> tensors = step_tensors(params, grads, {exp_avgs}, kahan_comps,
                                                       counters, sums, stat_rows, rng_keys);
  const LionHyper h = lion_hyper(lr, beta1, beta2, weight_decay, maximize);
  dispatch_format(params[0].scalar_type(), [&](auto format) {
    using F = decltype(format);
    run_step<F>(
        tensors, [&](const StepTensor& t) { return LionElement::of(h, t); }, stochastic,
        !kahan_comps.empty(), counters.has_value(), scale_ptr(grad_scale));
  });
}

}  // namespace
}  // namespace cpu
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("lion_step", &bitkernels::cpu::lion_step_cpu);
}
