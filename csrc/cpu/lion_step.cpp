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
    auto run = [&](auto is_plain, auto with_decay) {
      constexpr bool kPlain = decltype(is_plain)::value;
      constexpr bool kDecay = decltype(with_decay)::value;
      run_step<F>(
          tensors, [&](const StepTensor& t) { return LionElement<kPlain, kDecay>::of(h, t); },
          stochastic, !kahan_comps.empty(), counters.has_value(), scale_ptr(grad_scale));
    };
    // Without maximize (as usual), with or without decay, the rule leaves out their picks.
    if (maximize) {
      run(Bool<false>{}, Bool<true>{});
    } else {
      weight_decay != 0.0 ? run(Bool<true>{}, Bool<true>{}) : run(Bool<true>{}, Bool<false>{});
    }
  });
}

}  // namespace
}  // namespace cpu
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("lion_step", &bitkernels::cpu::lion_step_cpu);
}
