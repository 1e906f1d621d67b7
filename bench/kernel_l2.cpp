// The AVX-512 fused step alone, one thread, data in L2: nanoseconds per vector of 16 elements
// with statistics and without, and a fingerprint of the bits it wrote. It calls the v4 loops of
// step_loops.h directly (-DKERNEL_ISA=v3: the AVX2 loops); Python, the optimizer and the memory
// are out of the way, so a change to the kernels' instructions shows here when it is lost in
// the noise of a 16M-element step (bench/RESULTS.md). Build and run with bench/kernel_l2.sh;
// one format per build (-DKERNEL_FORMAT=Fp32, Bf16 or Fp16), the rule and size on the command
// line:
//
//     kernel_l2 [adamw|sgd|lion] [elements, default 32768] [steps per timing, default 200]
//               [grad scale, default none]
//
// With a grad scale (AMP's GradScaler), the gradients are stored scaled by it and the step
// unscales them.
//
// Each line of output is the minimum over 7 rounds, stats and no-stats timed alternately; run it
// several times: on a shared VM, other tenants slow whole runs down, and the minimum over runs
// is the kernel's own speed. The fingerprint (a hash of parameters and states after 3 tracked
// steps, the counters and the sums) must not change when a change claims the same bits.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "step_loops.h"

#ifndef KERNEL_ISA  // the loops' namespace (simd.h), and the least this CPU must run for them
#define KERNEL_ISA v4
#define KERNEL_ISA_LEAST kX86_64_V4
#endif

namespace {

using namespace bitkernels;
namespace loops = cpu::KERNEL_ISA;
using F = KERNEL_FORMAT;
using bits_t = F::bits_t;

bits_t stored(float x) {  // x rounded to F, to nearest
  return bits_t(round_nearest<F>(x));
}

template <class T>
T* zeroed(int64_t n) {  // page-aligned, as large torch tensors are
  const size_t bytes = (size_t(n) * sizeof(T) + 4095) / 4096 * 4096;
  void* p = std::aligned_alloc(4096, bytes);
  std::memset(p, 0, bytes);
  return static_cast<T*>(p);
}

uint64_t fnv1a(uint64_t h, const void* data, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(data);
  for (size_t k = 0; k < bytes; ++k) h = (h ^ c[k]) * 1099511628211ull;
  return h;
}

template <class Element>
int run(const char* rule, Element make(StepTensor&), int64_t n, int reps, float grad_scale) {
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.f, 1.f);
  // Weights ~ N(0, 0.02), gradients ~ N(0, 1e-3), as bench/step_ratio.py and the runner.
  bits_t* const p = zeroed<bits_t>(n);
  bits_t* const g = zeroed<bits_t>(n);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = stored(0.02f * normal(rng));
    g[i] = stored(1e-3f * normal(rng) * (grad_scale > 0 ? grad_scale : 1.0f));
  }
  StepTensor t{};
  t.param = p;
  t.grad = g;
  t.numel = n;
  for (int s = 0; s < Element::kStates; ++s) t.state[s] = zeroed<float>(n);
  t.adam = adam_step_scalars(1e-3 / (1 - 0.9), std::sqrt(1 - 0.999));
  const Element element = make(t);
  const float* const scale = grad_scale > 0 ? &grad_scale : nullptr;
  auto step = [&](bool track, cpu::Partial& out) {
    if (track)
      loops::step_range<F, Rounding::kNearest, false, true>(element, t, 0, n, scale, out);
    else
      loops::step_range<F, Rounding::kNearest, false, false>(element, t, 0, n, scale, out);
  };
  cpu::Partial out{};
  for (int r = 0; r < 3; ++r) step(true, out);
  uint64_t h = fnv1a(1469598103934665603ull, p, n * sizeof(bits_t));
  for (int s = 0; s < Element::kStates; ++s) h = fnv1a(h, t.state[s], n * sizeof(float));
  const uint64_t bits_hash = h;
  h = fnv1a(h, &out, offsetof(cpu::Partial, sums));
  std::printf("fingerprint %s %s n=%lld: bits %016llx counters %016llx sums %.9g %.9g %.9g %.9g\n",
              rule, F::kWidth == 32 ? "fp32" : F::kExponent == 8 ? "bf16" : "fp16",
              static_cast<long long>(n), static_cast<unsigned long long>(bits_hash),
              static_cast<unsigned long long>(h), out.sums[0], out.sums[1], out.sums[2],
              out.sums[3]);
  double best[2] = {1e9, 1e9};
  for (int round = 0; round < 7; ++round) {
    for (int track = 0; track < 2; ++track) {
      const auto start = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) step(track, out);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      best[track] = std::min(best[track], took.count() / reps / (n / 16.0) * 1e9);
    }
  }
  std::printf("%s %s n=%lld: statistics %.2f ns per 16 elements, without %.2f (min of 7)\n", rule,
              F::kWidth == 32 ? "fp32" : F::kExponent == 8 ? "bf16" : "fp16",
              static_cast<long long>(n), best[1], best[0]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (cpu::detected_isa() < cpu::Isa::KERNEL_ISA_LEAST) {
    std::fprintf(stderr, "this CPU does not run the kernels' instruction set\n");
    return 2;
  }
  const std::string rule = argc > 1 ? argv[1] : "adamw";
  // 32768: fp32 AdamW's four arrays take 512 KB, half of Zen 4's 1 MB L2. At 65536 (the
  // default until the sixteenth session) they filled it, and the time with statistics took one
  // of two values by the process's physical pages: 9.5 or 13.3 ns per 16 elements (without
  // statistics 6.1-6.4 either way; bench/RESULTS.md).
  const int64_t n = argc > 2 ? std::atoll(argv[2]) : 32768;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 200;
  const float grad_scale = argc > 4 ? std::strtof(argv[4], nullptr) : 0.0f;  // 0: no AMP
  if (rule == "adamw")  // the plain AdamW kernel: torch's defaults with weight decay 0.01
    return run<AdamElement<false, true, true>>("adamw", [](StepTensor& t) {
      return AdamElement<false, true, true>::of(
          adam_hyper(1e-3, 0.9, 0.999, 1e-8, 0.01, true, false, false), t);
    }, n, reps, grad_scale);
  if (rule == "sgd")  // SGD with momentum 0.9 (the plain kernel)
    return run<SgdElement<true, true>>("sgd", [](StepTensor& t) {
      t.first = flag(false);
      return SgdElement<true, true>::of(sgd_hyper(1e-3, 0.9, 0, 0, false, false), t);
    }, n, reps, grad_scale);
  if (rule == "lion")  // Lion with decay (the plain kernel)
    return run<LionElement<true, true>>("lion", [](StepTensor& t) {
      return LionElement<true, true>::of(lion_hyper(1e-4, 0.9, 0.99, 0.01, false), t);
    }, n, reps, grad_scale);
  std::fprintf(stderr,
               "usage: kernel_l2 [adamw|sgd|lion] [elements] [steps per timing] [grad scale]\n");
  return 2;
}
