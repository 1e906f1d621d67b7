// AMP's gradient unscaling in the CPU steps: g / grad_scale, to the bit as torch's fused
// optimizers compute it, at a multiply's cost where that is exact.
#pragma once

#include <cmath>

namespace bitkernels {
namespace cpu {

// GradScaler's scales are powers of two (2^16 to start, then doubled or halved). For those,
// g * (1 / grad_scale) is g / grad_scale to the bit: 1 / grad_scale is exact, and both round the
// same exact quotient once. Other scales divide. AdamW fp32 with AMP, data in L2, Zen 4
// (bench/kernel_l2.sh, bench/RESULTS.md): the division took the AVX-512 step from 6.1 to 7.9 ns
// per 16 elements; the AVX2 loops, which divided by 1 without AMP, from 7.6 to 9.2.
struct GradUnscale {
  enum How { kNone, kMultiply, kDivide };
  How how = kNone;
  float factor = 1.0f;  // kMultiply: 1 / grad_scale; kDivide: grad_scale

  static GradUnscale of(const float* grad_scale) {
    if (grad_scale == nullptr) return {};
    const float scale = *grad_scale;
    const float reciprocal = 1.0f / scale;
    int exponent;
    // frexp's fraction is +-0.5 exactly for powers of two (NaN, inf and 0 give themselves); the
    // reciprocal of the smallest ones overflows.
    if (std::fabs(std::frexp(scale, &exponent)) == 0.5f && std::isfinite(reciprocal))
      return {kMultiply, reciprocal};
    return {kDivide, scale};
  }

  // g unscaled; V is float or a vector of floats with * and /.
  template <class V>
  V operator()(V g) const {
    if (how == kNone) return g;
    if (how == kMultiply) return g * V(factor);
    return g / V(factor);
  }
};

}  // namespace cpu
}  // namespace bitkernels
