// The op schemas of the bitkernels library, defined once. Device files register the kernels
// (TORCH_LIBRARY_IMPL) for CPU in this extension and for CUDA in bitkernels._C_cuda.
#include <optional>
#include <string>
#include <vector>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>
#include <torch/library.h>

#include "bitkernels/bitstats.h"
#include "cpu/advance_steps.h"
#include "cpu/simd.h"
#include "python_module.h"

namespace {

// The counter layout of bitstats.h, so Python can check that it mirrors the same slots.
std::vector<int64_t> stats_layout() {
  namespace s = bitkernels::stats;
  return {s::kFlips, s::kMaxWidth, s::kChanged,   s::kLost,      s::kZero,
          s::kNonfinite, s::kNumel, s::kSteps,    s::kDepth,     s::kDepthBins,
          s::kDepthMin, s::kNumCounters, s::kSumD2, s::kSumG2, s::kSumP2,
          s::kSumR2, s::kNumSums};
}

namespace cpu = bitkernels::cpu;

const char* const kIsaNames[] = {"base", "x86-64-v3", "x86-64-v4", "x86-64-v4+avx512bf16"};

// The instruction sets the CPU kernels can use on this CPU, lowest first.
std::vector<std::string> cpu_isas() {
  std::vector<std::string> names;
  for (int isa = 0; isa <= int(cpu::detected_isa()); ++isa) names.push_back(kIsaNames[isa]);
  return names;
}

// The instruction set the CPU kernels use; `limit` (one of cpu_isas(), or "native") first sets
// the highest they may use: the tests run every code path this CPU can.
std::string cpu_isa(const std::optional<std::string>& limit) {
  if (limit.has_value()) {
    int chosen = -1;
    for (int isa = 0; isa <= int(cpu::detected_isa()); ++isa)
      if (*limit == kIsaNames[isa]) chosen = isa;
    if (*limit == "native") chosen = int(cpu::Isa::kX86_64_V4Bf16);
    TORCH_CHECK_VALUE(chosen >= 0, "cpu_isa: limit must be \"native\" or one of the ISAs this "
                      "CPU runs (", c10::Join(", ", cpu_isas()), "), got \"", *limit, "\"");
    cpu::isa_limit().store(chosen);
  }
  return kIsaNames[int(cpu::active_isa())];
}

}  // namespace

TORCH_LIBRARY(bitkernels, m) {
  // Accumulates the bit statistics of old -> new into counters (int64, stats::kNumCounters) and
  // sums (float64, stats::kNumSums). Without `update` it fills flips, changed, numel and steps;
  // with the intended fp32 update d it also fills lost, zero, nonfinite, depth and the sums
  // sum_d2, sum_p2 and sum_r2.
  m.def(
      "bitflip_stats(Tensor old, Tensor new, Tensor? update, Tensor(a!) counters, "
      "Tensor(b!) sums) -> ()");
  m.def("stats_layout() -> int[]", &stats_layout);
  m.def("cpu_isas() -> str[]", &cpu_isas);
  m.def("cpu_isa(str? limit=None) -> str", &cpu_isa);

  // Fused optimizer steps over a list of same-dtype tensors on one device. Per tensor i:
  // stat_rows[i] is its row in counters [R, kNumCounters] / sums [R, kNumSums] (None: no
  // statistics), rng_keys[i] its stochastic-rounding stream key. kahan_comps is empty or one
  // compensation buffer (param dtype) per tensor. With found_inf nonzero nothing is written.
  // Scalars arrive as float64 and are rounded to fp32 once, on the host.
  m.def(
      "sgd_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, "
      "Tensor(c!)[] kahan_comps, Tensor(d!)? counters, Tensor(e!)? sums, int[] stat_rows, "
      "int[] rng_keys, bool[] first_step, Tensor? grad_scale, Tensor? found_inf, float lr, "
      "float momentum, float dampening, float weight_decay, bool nesterov, bool maximize, "
      "bool stochastic) -> ()");
  m.def(
      "adam_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, "
      "Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] max_exp_avg_sqs, Tensor(e!)[] kahan_comps, "
      "Tensor(f!)? counters, Tensor(g!)? sums, int[] stat_rows, int[] rng_keys, "
      "float[] step_sizes, float[] bias_correction2_sqrts, Tensor? grad_scale, "
      "Tensor? found_inf, float lr, float beta1, float beta2, float eps, float weight_decay, "
      "bool decoupled, bool amsgrad, bool maximize, bool stochastic) -> ()");
  m.def(
      "lion_step(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, "
      "Tensor(c!)[] kahan_comps, Tensor(d!)? counters, Tensor(e!)? sums, int[] stat_rows, "
      "int[] rng_keys, Tensor? grad_scale, Tensor? found_inf, float lr, float beta1, "
      "float beta2, float weight_decay, bool maximize, bool stochastic) -> ()");
}

namespace {

PyMethodDef module_functions[] = {
    {"advance_steps", bitkernels::cpu::advance_steps, METH_O,
     "advance_steps(steps: list[Tensor]) -> list[float] | None: adds 1 to every step count "
     "(float32 CPU scalars) and returns the new counts; None, changing nothing, if any step "
     "is not one."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

BK_PYTHON_MODULE(_C, module_functions)
