// bitkernels::adam_step on the CPU: Adam and AdamW (torch.optim semantics) fused with the bit
// statistics, one parallel region per call.
#include <torch/library.h>

#include "step_args.h"
#include "step_kernels.h"

namespace bitkernels {
namespace cpu {
namespace {

void adam_step_cpu BK_ADAM_STEP_PARAMS {
  const std::vector<StepTensor> tensors = adam_step_tensors(BK_ADAM_STEP_ARGUMENTS);
  if (tensors.empty() || step_skipped(found_inf)) return;
  const AdamHyper h =
      adam_hyper(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize);
  dispatch_format(params[0].scalar_type(), [&](auto format) {
    using F = decltype(format);
    auto run = [&](auto with_amsgrad, auto plain, auto with_decay) {
      constexpr bool kAmsgrad = decltype(with_amsgrad)::value;
      constexpr bool kPlain = decltype(plain)::value;
      constexpr bool kDecay = decltype(with_decay)::value;
      run_step<F>(
          tensors,
          [&](const StepTensor& t) { return AdamElement<kAmsgrad, kPlain, kDecay>::of(h, t); },
          stochastic, !kahan_comps.empty(), counters.has_value(), scale_ptr(grad_scale));
    };
    // The usual configurations (AdamW, and Adam without weight decay) get their own kernels,
    // without picks; the rarer ones (amsgrad, maximize, Adam's coupled weight decay, beta1 <=
    // 0.5) share the general kernels.
    const bool plain = h.maximize.mask == 0 && h.coupled_decay.mask == 0 &&
                       h.beta1_weight.from_a.mask != 0;
    if (amsgrad) {
      run(Bool<true>{}, Bool<false>{}, Bool<true>{});
    } else if (!plain) {
      run(Bool<false>{}, Bool<false>{}, Bool<true>{});
    } else if (h.decoupled_decay.mask != 0) {
      run(Bool<false>{}, Bool<true>{}, Bool<true>{});
    } else {
      run(Bool<false>{}, Bool<true>{}, Bool<false>{});
    }
  });
}

}  // namespace
}  // namespace cpu
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("adam_step", &bitkernels::cpu::adam_step_cpu);
}
