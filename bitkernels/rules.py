"""Host-side halves of the update rules (csrc/include/bitkernels/rules.h, rounding.h).

Hyper-parameters arrive as Python floats (float64) and are rounded to fp32 once, exactly as the
C++ host code does, so the Triton kernels and the torch reference compute with the same fp32
scalars as the CPU and CUDA kernels. The stochastic-rounding stream key is the same 32-bit hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MASK32 = 0xFFFFFFFF


def f32(x: float) -> float:
    """x rounded to the nearest fp32 value (returned as a Python float, exactly)."""
    return float(np.float32(x))


@dataclass(frozen=True)
class SgdHyper:
    neg_lr: float
    momentum: float
    one_minus_dampening: float
    weight_decay: float
    has_momentum: bool
    decay: bool
    nesterov: bool
    maximize: bool


def sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, maximize) -> SgdHyper:
    return SgdHyper(f32(-lr), f32(momentum), f32(1.0 - dampening), f32(weight_decay),
                    momentum != 0.0, weight_decay != 0.0, bool(nesterov), bool(maximize))


@dataclass(frozen=True)
class AdamHyper:
    lerp_from_a: bool  # exp_avg.lerp_(grad, w) with w = 1 - beta1 < 0.5
    lerp_coef: float   # w, or -(1 - w)
    beta2: float
    one_minus_beta2: float
    eps: float
    weight_decay: float
    neg_lr_weight_decay: float
    coupled_decay: bool
    decoupled_decay: bool
    amsgrad: bool
    maximize: bool


def adam_hyper(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize) -> AdamHyper:
    w = f32(1.0 - beta1)
    from_a = w < 0.5
    decay = weight_decay != 0.0
    return AdamHyper(from_a, w if from_a else -f32(1.0 - w), f32(beta2), f32(1.0 - beta2),
                     f32(eps), f32(weight_decay), f32(-(lr * weight_decay)),
                     decay and not decoupled, decay and bool(decoupled), bool(amsgrad),
                     bool(maximize))


def adam_step_size(lr: float, beta1: float, step: float) -> float:
    """lr / (1 - beta1^t) in float64 (the op takes it per tensor)."""
    return lr / (1.0 - beta1 ** step)


def adam_bias_correction2_sqrt(beta2: float, step: float) -> float:
    return math.sqrt(1.0 - beta2 ** step)


@dataclass(frozen=True)
class LionHyper:
    beta1: float
    one_minus_beta1: float
    beta2: float
    one_minus_beta2: float
    neg_lr: float
    neg_lr_weight_decay: float
    decay: bool
    maximize: bool


def lion_hyper(lr, beta1, beta2, weight_decay, maximize) -> LionHyper:
    return LionHyper(f32(beta1), f32(1.0 - beta1), f32(beta2), f32(1.0 - beta2), f32(-lr),
                     f32(-(lr * weight_decay)), weight_decay != 0.0, bool(maximize))


# ---- the stochastic-rounding stream ------------------------------------------------------------
def mix32(x: int) -> int:
    """The 32-bit mixer of rounding.h (xorshift-multiply, "lowbias32")."""
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    x ^= x >> 16
    return x


def stream_key(seed: int, tensor_index: int, step: int) -> int:
    """Key of one tensor's random stream at one step (rounding.h: stream_key)."""
    seed &= (1 << 64) - 1
    s = mix32((seed & MASK32) ^ mix32(seed >> 32))
    return mix32(mix32(s ^ (tensor_index & MASK32)) ^ (step & MASK32))
