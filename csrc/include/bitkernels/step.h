// One tensor of a fused step call and the elements that bind an update rule (rules.h) to that
// tensor's state, shared by the CPU and CUDA kernels. Plain data: the CUDA binding copies an
// array of StepTensor to the device.
#pragma once

#include <cstdint>

#include "bitkernels/macros.h"
#include "bitkernels/rules.h"

namespace bitkernels {

constexpr int kMaxStates = 3;  // fp32 state tensors of a rule: Adam's m, v and v_max

struct StepTensor {
  void* param;
  const void* grad;
  void* comp;        // Kahan compensation (parameter dtype) or null
  float* state[kMaxStates];  // the rule's fp32 state, see the elements
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
// element.apply(p, g, s0, s1, s2) is the same update on state values the caller has loaded
// (s_k from state[k], k < kStates; the others are ignored) and stores back: the CUDA kernel
// loads several elements' values before it stores any (step_kernel.cuh).
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
  BK_INLINE V apply(V p, V g, V& b, V&, V&) const {
    return sgd_update<kPlain>(h, p, g, b, first);
  }
  template <class V>
  BK_INLINE V operator()(int64_t i, V p, V g) const {
    V b = kMomentum ? load_like(p, buf + i) : V(0.0f), unused = V(0.0f);
    const V d = apply(p, g, b, unused, unused);
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
  BK_INLINE V apply(V p, V g, V& mi, V& vi, V& v_maxi) const {
    return adam_update<kAmsgrad, kPlain, kDecay>(h, s, p, g, mi, vi, v_maxi);
  }
  template <class V>
  BK_INLINE V operator()(int64_t i, V p, V g) const {
    V mi = load_like(p, m + i), vi = load_like(p, v + i);
    V v_maxi = kAmsgrad ? load_like(p, v_max + i) : V(0.0f);
    const V d = apply(p, g, mi, vi, v_maxi);
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
  BK_INLINE V apply(V p, V g, V& mi, V&, V&) const {
    return lion_update<kPlain, kDecay>(h, p, g, mi);
  }
  template <class V>
  BK_INLINE V operator()(int64_t i, V p, V g) const {
    V mi = load_like(p, m + i), unused = V(0.0f);
    const V d = apply(p, g, mi, unused, unused);
    store_lanes(m + i, mi);
    return d;
  }
  BK_INLINE static LionElement of(const LionHyper& h, const StepTensor& t) {
    return {h, t.state[0]};
  }
};

}  // namespace bitkernels
