// bitkernels::sgd_step on the CPU: SGD with momentum, dampening, Nesterov, weight decay and
// maximize (torch.optim semantics) fused with the bit statistics.
#include <torch/library.h>

#include "step_args.h"
#include "step_kernels.h"

namespace bitkernels {
namespace cpu {
namespace {

void sgd_step_cpu BK_SGD_STEP_PARAMS {
  const std::vector<StepTensor> tensors = sgd_step_tensors(BK_SGD_STEP_ARGUMENTS);
  if (tensors.empty() || step_skipped(found_inf)) return;
  const bool has_momentum = momentum != 0.0;
  // The usual SGD with momentum (no maximize, decay or Nesterov) without their picks: ~8 of the
  // loop's vector instructions per element, which the statistics share the ports with.
  const bool plain = has_momentum && !maximize && weight_decay == 0.0 && !nesterov;
  const SgdHyper h = sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, maximize);
  dispatch_format(params[0].scalar_type(), [&](auto format) {
    using F = decltype(format);
    auto run = [&](auto with_momentum, auto is_plain) {
      constexpr bool kMomentum = decltype(with_momentum)::value;
      constexpr bool kPlain = decltype(is_plain)::value;
      run_step<F>(
          tensors,
          [&](const StepTensor& t) { return SgdElement<kMomentum, kPlain>::of(h, t); },
          stochastic, !kahan_comps.empty(), counters.has_value(), scale_ptr(grad_scale));
    };
    if (plain) {
      run(Bool<true>{}, Bool<true>{});
    } else {
      has_momentum ? run(Bool<true>{}, Bool<false>{}) : run(Bool<false>{}, Bool<false>{});
    }
  });
}

}  // namespace
}  // namespace cpu
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("sgd_step", &bitkernels::cpu::sgd_step_cpu);
}
