// Per-element optimizer update rules, one fixed order of operations for every backend.
//
// All arithmetic is fp32 with one IEEE rounding per operation, never contracted into FMA
// (CPU: -ffp-contract=off, CUDA: --fmad=false, Triton: enable_fp_fusion=False), so the CPU
// kernel, the Triton interpreter and the torch reference agree bit for bit. Step-dependent
// scalars arrive precomputed: the host works them out once per step in float64 and rounds them
// to fp32. The order follows torch.optim's single-tensor implementations (lerp, addcmul,
// addcdiv spelled out without FMA), with one deliberate difference: a rule returns the whole
// intended update d, and the parameter is written once as round(p + d). That d is what the
// statistics measure.
#pragma once

#include <cmath>
#include <cstdint>

#include "bitkernels/formats.h"
#include "bitkernels/macros.h"
#include "bitkernels/rounding.h"

namespace bitkernels {

// The update rules are lane code (see lanes.h): V is float, or a vector of fp32 lanes in the
// AVX-512 CPU kernel, so that every backend in C++ runs this one definition.

// A condition that is the same for every element (a hyper-parameter). pick() is a bitwise blend:
// compilers vectorize it as is, while a ?: on a loop-invariant bool makes GCC version the loop
// (and give up on loops this size). Both sides are always computed.
struct Flag {
  uint32_t mask;  // all ones when set
};

inline Flag flag(bool set) { return {set ? 0xFFFFFFFFu : 0u}; }

template <class V>
BK_INLINE V pick(Flag f, V if_set, V if_clear) {
  return bits_float((float_bits(if_set) & f.mask) | (float_bits(if_clear) & ~f.mask));
}

// torch.maximum: NaN in either argument gives NaN.
template <class V>
BK_INLINE V nan_max(V a, V b) {
  return select((a != a) | (a > b), a, b);
}

// torch.lerp(a, b, w) as ATen computes it, without FMA: a + w * (b - a) for w < 0.5, else
// b - (b - a) * (1 - w). Both are written base + (b - a) * coef (negation is exact), with the
// host's choice in LerpWeight.
struct LerpWeight {
  Flag from_a;  // w < 0.5
  float coef;   // w, or -(1 - w) in fp32
};

inline LerpWeight lerp_weight(float w) { return {flag(w < 0.5f), w < 0.5f ? w : -(1.0f - w)}; }

template <class V>
BK_INLINE V lerp(V a, V b, LerpWeight w) {
  return pick(w.from_a, a, b) + (b - a) * w.coef;
}

template <class V>
BK_INLINE V sign_of(V c) {  // torch.sign: -1, 0 (for +-0), 1, NaN for NaN
  return select(c > 0.0f, V(1.0f), select(c < 0.0f, V(-1.0f), c * 0.0f));
}

// ---- SGD (torch.optim.SGD) -------------------------------------------------------------------
struct SgdHyper {
  float neg_lr;
  float momentum;
  float one_minus_dampening;
  float weight_decay;
  Flag has_momentum;
  Flag decay;
  Flag nesterov;
  Flag maximize;
};

// d for one element; updates the momentum buffer. first: the buffer did not exist yet (torch
// then starts it at the gradient, without dampening). kPlain: the caller guarantees maximize,
// weight decay and nesterov are clear, as in the usual SGD with momentum; their picks would
// cost 8 vector instructions per element for nothing.
template <bool kPlain = false, class V>
BK_INLINE V sgd_update(const SgdHyper& h, V p, V g, V& buf, Flag first) {
  if constexpr (!kPlain) {
    g = pick(h.maximize, -g, g);
    g = pick(h.decay, g + h.weight_decay * p, g);
  }
  const V next_buf = pick(first, g, buf * h.momentum + h.one_minus_dampening * g);
  buf = pick(h.has_momentum, next_buf, buf);
  V direction = next_buf;
  if constexpr (!kPlain) direction = pick(h.nesterov, g + h.momentum * next_buf, next_buf);
  return h.neg_lr * pick(h.has_momentum, direction, g);
}

// ---- Adam / AdamW (torch.optim.Adam, AdamW) ------------------------------------------------------
struct AdamHyper {
  LerpWeight beta1_weight;  // exp_avg.lerp_(grad, 1 - beta1)
  float beta2;
  float one_minus_beta2;
  float eps;
  float weight_decay;
  float neg_lr_weight_decay;  // -lr * weight_decay (decoupled decay)
  Flag coupled_decay;         // Adam with weight decay: added to the gradient
  Flag decoupled_decay;       // AdamW with weight decay: applied to the parameter
  Flag amsgrad;
  Flag maximize;
};

// The decoupled decay term -lr * wd * p of AdamW and Lion. torch scales the parameter first
// (p * (1 - lr * wd)), which leaves an infinite parameter infinite; as a term of d, +inf + -inf
// would write NaN there instead. The decay of a parameter that is not finite moves it nowhere:
// its term is 0.
template <class V>
BK_INLINE V decoupled_decay_term(float neg_lr_weight_decay, V p) {
  return select(p - p == V(0.0f), neg_lr_weight_decay * p, V(0.0f));
}

// step plus the decoupled decay term where `decay` is set. kPlain: the caller guarantees that
// decay is set exactly when kDecay, so nothing is picked (the plain AdamW and Lion kernels).
template <bool kPlain, bool kDecay, class V>
BK_INLINE V with_decoupled_decay(Flag decay, float neg_lr_weight_decay, V p, V step) {
  if constexpr (!kPlain) {
    return pick(decay, decoupled_decay_term(neg_lr_weight_decay, p) + step, step);
  } else if constexpr (kDecay) {
    return decoupled_decay_term(neg_lr_weight_decay, p) + step;
  } else {
    return step;
  }
}

struct AdamStep {  // per tensor, from its step count t
  float neg_step_size;          // -lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

// kAmsgrad false: the caller guarantees h.amsgrad is clear, so v_max is neither read nor written
// (the picks would select v and keep v_max: the same bits, without their work). kPlain: the
// caller guarantees the usual configuration besides: h.maximize and h.coupled_decay clear, the
// lerp taken from exp_avg's side (beta1 > 0.5), and h.decoupled_decay set exactly when kDecay.
// Nothing is then picked: 7 vector instructions per element fewer, and with statistics the
// 16-bit steps are bound by the core's work, not the memory (the AVX-512 step of bf16).
template <bool kAmsgrad, bool kPlain = false, bool kDecay = true, class V>
BK_INLINE V adam_update(const AdamHyper& h, const AdamStep& s, V p, V g, V& m, V& v, V& v_max) {
  if constexpr (!kPlain) {
    g = pick(h.maximize, -g, g);
    g = pick(h.coupled_decay, g + h.weight_decay * p, g);
    m = lerp(m, g, h.beta1_weight);
  } else {
    m = m + (g - m) * h.beta1_weight.coef;  // lerp() with from_a set
  }
  v = v * h.beta2 + h.one_minus_beta2 * g * g;
  V second_moment = v;
  if constexpr (kAmsgrad) {
    v_max = pick(h.amsgrad, nan_max(v_max, v), v_max);
    second_moment = pick(h.amsgrad, v_max, v);
  }
  const V denom = sqrt_of(second_moment) / s.bias_correction2_sqrt + h.eps;
  const V step = s.neg_step_size * m / denom;
  return with_decoupled_decay<kPlain, kDecay>(h.decoupled_decay, h.neg_lr_weight_decay, p, step);
}

// ---- Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms") -----------------------
struct LionHyper {
  float beta1;
  float one_minus_beta1;
  float beta2;
  float one_minus_beta2;
  float neg_lr;
  float neg_lr_weight_decay;
  Flag decay;
  Flag maximize;
};

// kPlain: the caller guarantees maximize is clear and h.decay is kDecay, so neither is picked
// (2 vector instructions per element for maximize, 1 for decay, 5 more without decay). Lion
// has no division: with statistics its 16-bit steps are bound by vector instructions, and
// each one counts.
template <bool kPlain = false, bool kDecay = true, class V>
BK_INLINE V lion_update(const LionHyper& h, V p, V g, V& m) {
  if constexpr (!kPlain) g = pick(h.maximize, -g, g);
  const V c = h.beta1 * m + h.one_minus_beta1 * g;
  m = h.beta2 * m + h.one_minus_beta2 * g;
  const V step = h.neg_lr * sign_of(c);
  return with_decoupled_decay<kPlain, kDecay>(h.decay, h.neg_lr_weight_decay, p, step);
}

// ---- host: hyper-parameters (float64 in) rounded once to the fp32 the rules use -------------------
// bitkernels/rules.py mirrors these for the Triton and reference backends.
inline SgdHyper sgd_hyper(double lr, double momentum, double dampening, double weight_decay,
                          bool nesterov, bool maximize) {
  return {float(-lr),         float(momentum),         float(1.0 - dampening),
          float(weight_decay), flag(momentum != 0.0),  flag(weight_decay != 0.0),
          flag(nesterov),      flag(maximize)};
}

inline AdamHyper adam_hyper(double lr, double beta1, double beta2, double eps,
                            double weight_decay, bool decoupled, bool amsgrad, bool maximize) {
  const bool decay = weight_decay != 0.0;
  return {lerp_weight(float(1.0 - beta1)),
          float(beta2),
          float(1.0 - beta2),
          float(eps),
          float(weight_decay),
          float(-(lr * weight_decay)),
          flag(decay && !decoupled),
          flag(decay && decoupled),
          flag(amsgrad),
          flag(maximize)};
}

// step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t), both float64.
inline AdamStep adam_step_scalars(double step_size, double bias_correction2_sqrt) {
  return {float(-step_size), float(bias_correction2_sqrt)};
}

inline LionHyper lion_hyper(double lr, double beta1, double beta2, double weight_decay,
                            bool maximize) {
  return {float(beta1),      float(1.0 - beta1),          float(beta2),
          float(1.0 - beta2), float(-lr),                 float(-(lr * weight_decay)),
          flag(weight_decay != 0.0), flag(maximize)};
}

// ---- landing the update in the stored format -------------------------------------------------
template <class V, class U>
struct LandedLanes {
  U new_bits;   // stored bits written to the parameter
  V d;          // the update that was rounded in (with Kahan: update + compensation)
  U comp_bits;  // new Kahan compensation (stored format), when used
};
using Landed = LandedLanes<float, uint32_t>;

// new = round(p + d) in F. With Kahan summation the compensation c (stored in F) carries what
// rounding dropped: y = d + c is applied and c' = y - (new - p) kept, reset to 0 when not finite.
template <class F, Rounding kMode, bool kKahan, class V, class U>
BK_INLINE LandedLanes<V, U> land(V p, V d, U comp_bits, U random_bits) {
  V y = d;
  if constexpr (kKahan) y = d + to_float<F>(comp_bits);
  const U new_bits = round_to<F, kMode>(p + y, random_bits);
  U comp = U(0u);
  if constexpr (kKahan) {
    const V carried = y - (to_float<F>(new_bits) - p);
    comp = select(is_finite_bits<Fp32>(float_bits(carried)), round_nearest<F>(carried), U(0u));
  }
  return {new_bits, y, comp};
}

}  // namespace bitkernels
