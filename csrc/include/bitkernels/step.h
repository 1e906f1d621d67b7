// One tensor of a fused step call and the elements that bind an update rule (rules.h) to that
// tensor's state, shared by the CPU and CUDA kernels. Plain data: the CUDA binding copies an
// array of StepTensor to the device.
#pragma once

#include <cstdint>

#include "bitkernels/macros.h"
#include "bitkernels/rules.h"

namespace bitkernels {

struct StepTensor {
  void* param;
  const void* grad;
  void* comp;        // Kahan compensation (parameter dtype) or null
  float* state[3];   // the rule's fp32 state, see the elements
  int64_t numel;
  uint32_t rng_key;  // stochastic-rounding stream of this tensor at this step
  int64_t* counters;  // BitStats row, null when not tracking
  double* sums;
  AdamStep adam;  // Adam/AdamW: from this tensor's step count
  Flag first;     // SGD: the momentum buffer starts at this step
};

// ---- elements: a rule and one tensor's state, called per element index -----------------------
template <bool kMomentum>
struct SgdElement {
  SgdHyper h;
  float* buf;
  Flag first;
  BK_INLINE float operator()(int64_t i, float p, float g) const {
    float b = kMomentum ? buf[i] : 0.0f;
    const float d = sgd_update(h, p, g, b, first);
    if (kMomentum) buf[i] = b;
    return d;
  }
  BK_INLINE static SgdElement of(const SgdHyper& h, const StepTensor& t) {
    return {h, t.state[0], t.first};
  }
};

template <bool kAmsgrad>
struct AdamElement {
  AdamHyper h;
  AdamStep s;
  float* m;
  float* v;
  float* v_max;
  BK_INLINE float operator()(int64_t i, float p, float g) const {
    float mi = m[i], vi = v[i], v_maxi = kAmsgrad ? v_max[i] : 0.0f;
    const float d = adam_update(h, s, p, g, mi, vi, v_maxi);
    m[i] = mi;
    v[i] = vi;
    if (kAmsgrad) v_max[i] = v_maxi;
    return d;
  }
  BK_INLINE static AdamElement of(const AdamHyper& h, const StepTensor& t) {
    return {h, t.adam, t.state[0], t.state[1], t.state[2]};
  }
};

struct LionElement {
  LionHyper h;
  float* m;
  BK_INLINE float operator()(int64_t i, float p, float g) const {
    float mi = m[i];
    const float d = lion_update(h, p, g, mi);
    m[i] = mi;
    return d;
  }
  BK_INLINE static LionElement of(const LionHyper& h, const StepTensor& t) {
    return {h, t.state[0]};
  }
};

}  // namespace bitkernels
