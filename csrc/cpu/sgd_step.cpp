// bitkernels::sgd_step on the CPU: SGD with momentum, dampening, Nesterov, weight decay and
// maximize (torch.optim semantics) fused with the bit statistics.
#include <torch/library.h>

#include "op_checks.h"
#include "step_kernels.h"

namespace bitkernels {
namespace cpu {
namespace {

void sgd_step_cpu(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
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
  if (params.empty() || step_skipped(found_inf)) return;
  std::vector<StepTensor> tensors = step_tensors(params, grads, {momentum_buffers}, kahan_comps,
                                                 counters, sums, stat_rows, rng_keys);
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].first = flag(first_step[i]);
  const SgdHyper h = sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, maximize);
  dispatch_format(params[0].scalar_type(), [&](auto format) {
    using F = decltype(format);
    auto run = [&](auto with_momentum) {
      constexpr bool kMomentum = decltype(with_momentum)::value;
      run_step<F>(
          tensors,
          [&](const StepTensor& t) { return SgdElement<kMomentum>::of(h, t); },
          stochastic, !kahan_comps.empty(), counters.has_value(), scale_ptr(grad_scale));
    };
    has_momentum ? run(Bool<true>{}) : run(Bool<false>{});
  });
}

}  // namespace
}  // namespace cpu
}  // namespace bitkernels

TORCH_LIBRARY_IMPL(bitkernels, CPU, m) {
  m.impl("sgd_step", &bitkernels::cpu::sgd_step_cpu);
}
