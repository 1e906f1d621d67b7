// bitkernels::lion_step on the CPU: Lion (sign of the interpolated momentum, decoupled weight
// decay) fused with the bit statistics.
#include <torch/library.h>

#include "step_args.h"
#include "step_kernels.h"

namespace bitkernels {
namespace cpu {
namespace {

void lion_step_cpu BK_LION_STEP_PARAMS {
  const std::vector<StepTensor> tensors = lion_step_tensors(BK_LION_STEP_ARGUMENTS);
  if (tensors.empty() || step_skipped(found_inf)) return;
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
