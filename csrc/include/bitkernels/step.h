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
// Lane code (see lanes.h): element(i, p, g) with V = float reads and writes the state of element
// i; with a vector V, of the elements i, i + 1, ... (load_like/store_lanes of that vector type).
BK_INLINE float load_like(float, const float* x) { return *x; }
BK_INLINE void store_lanes(float* x, float v) { *x = v; }

// kPlain: see sgd_update.
template <bool kMomentum, bool kPlain = false>
struct SgdElement {
  static constexpr int kStates = kMomentum ? 1 : 0;  // state[0 .. kStates) are read
  SgdHyper h;
  float* buf;
  Flag first;
  template <class V>
  BK_INLINE V operator()(int64_t i, V p, V g) const {
    V b = kMomentum ? load_like(p, buf + i) : V(0.0f);
    const V d = sgd_update<kPlain>(h, p, g, b, first);
    if (kMomentum) store_lanes(buf + i, b);
    return d;
  }
  BK_INLINE static SgdElement of(const SgdHyper& h, const StepTensor& t) {
    return {h, t.state[0], t.first};
  }
};

// kAmsgrad, kPlain, kDecay: see adam_update.
template <bool kAmsgrad, bool kPlain = false, bool kDecay = true>
struct AdamElement {
  static constexpr int kStates = kAmsgrad ? 3 : 2;
  AdamHyper h;
  AdamStep s;
  float* m;
  float* v;
  float* v_max;
  template <class V>
  BK_INLINE V operator()(int64_t i, V p, V g) const {
    V mi = load_like(p, m + i), vi = load_like(p, v + i);
    V v_maxi = kAmsgrad ? load_like(p, v_max + i) : V(0.0f);
    const V d = adam_update<kAmsgrad, kPlain, kDecay>(h, s, p, g, mi, vi, v_maxi);
    store_lanes(m + i, mi);
    store_lanes(v + i, vi);
    if (kAmsgrad) store_lanes(v_max + i, v_maxi);
    return d;
  }
  BK_INLINE static AdamElement of(const AdamHyper& h, const StepTensor& t) {
    return {h, t.adam, t.state[0], t.state[1], t.state[2]};
  }
};

// kPlain, kDecay: see lion_update.
template <bool kPlain = false, bool kDecay = true>
struct LionElement {
  static constexpr int kStates = 1;
  LionHyper h;
  float* m;
  template <class V>
  BK_INLINE V operator()(int64_t i, V p, V g) const {
    V mi = load_like(p, m + i);
    const V d = lion_update<kPlain, kDecay>(h, p, g, mi);
    store_lanes(m + i, mi);
    return d;
  }
  BK_INLINE static LionElement of(const LionHyper& h, const StepTensor& t) {
    return {h, t.state[0]};
  }
};

}  // namespace bitkernels
