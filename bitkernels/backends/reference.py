"""Pure-torch reference backend: the readable statement of the statistics contract and the
oracle the kernels are tested against. Slow (materializes per-bit tensors); runs anywhere."""

from __future__ import annotations

import torch

from ..formats import format_of, ulp_exponent
from ..stats import Layout

# Elements per slice of the per-bit expansion (n x width int64), to bound memory.
_SLICE = 1 << 20


def _unsigned_bits(t: torch.Tensor) -> torch.Tensor:
    fmt = format_of(t.dtype)
    return t.view(fmt.bits_dtype).long() & ((1 << fmt.width) - 1)


def bitflip_stats(old: torch.Tensor, new: torch.Tensor, update: torch.Tensor | None,
                  counters: torch.Tensor, sums: torch.Tensor) -> None:
    fmt = format_of(old.dtype)
    old, new = old.reshape(-1), new.reshape(-1)
    positions = torch.arange(fmt.width, device=old.device)
    flips = torch.zeros(fmt.width, dtype=torch.int64, device=old.device)
    changed = torch.zeros((), dtype=torch.int64, device=old.device)
    for start in range(0, old.numel(), _SLICE):
        x = _unsigned_bits(old[start:start + _SLICE]) ^ _unsigned_bits(new[start:start + _SLICE])
        flips += ((x.unsqueeze(1) >> positions) & 1).sum(0)
        changed += (x != 0).sum()
    counters[Layout.FLIPS:Layout.FLIPS + fmt.width] += flips
    counters[Layout.CHANGED] += changed
    counters[Layout.NUMEL] += old.numel()
    counters[Layout.STEPS] += 1
    if update is None:
        return

    d = update.reshape(-1).float()
    unchanged = _unsigned_bits(old) == _unsigned_bits(new)
    d_finite, d_zero = torch.isfinite(d), d == 0
    moving = d_finite & ~d_zero
    counters[Layout.LOST] += (moving & unchanged).sum()
    counters[Layout.ZERO] += d_zero.sum()
    counters[Layout.NONFINITE] += (~d_finite | ~torch.isfinite(new)).sum()

    # depth n = floor(log2(|d| / ulp(old))) = floor(log2|d|) - log2 ulp(old); ulp(inf/NaN) is
    # infinite, which puts those updates in the lowest bin.
    log2_d = torch.frexp(d[moving]).exponent - 1
    old_moving = old[moving]
    n = log2_d - ulp_exponent(old_moving)
    n = torch.where(torch.isfinite(old_moving), n, Layout.DEPTH_MIN)
    bins = n.clamp(Layout.DEPTH_MIN, Layout.DEPTH_MAX) - Layout.DEPTH_MIN
    counters[Layout.DEPTH:Layout.DEPTH + Layout.DEPTH_BINS] += torch.bincount(
        bins.long(), minlength=Layout.DEPTH_BINS)

    ok = d_finite & torch.isfinite(old) & torch.isfinite(new)
    d64, old64, new64 = d[ok].double(), old[ok].double(), new[ok].double()
    sums[Layout.SUM_D2] += (d64 * d64).sum()
    sums[Layout.SUM_P2] += (old64 * old64).sum()
    sums[Layout.SUM_R2] += ((new64 - old64) ** 2).sum()


# ---- fused optimizer steps ---------------------------------------------------------------------
# The same operations, in the same order and in fp32, as rules.h / rounding.h; torch's basic
# elementwise ops round once each (no FMA), so on the CPU these give the kernels' exact bits.
# Long-hand where torch would fuse: no alpha=, lerp, addcmul or addcdiv; and no division by a
# scalar, which torch turns into multiplication by its reciprocal.

from .. import rules as _rules  # noqa: E402
from ..formats import FORMATS as _FORMATS  # noqa: E402

_MASK32 = 0xFFFFFFFF
_CANONICAL_NAN = {torch.float32: 0x7FC00000, torch.bfloat16: 0x7FC0, torch.float16: 0x7E00}


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 for x in [0, 2^32), without overflowing int64."""
    low = x * (c & 0xFFFF)
    high = ((x * (c >> 16)) & 0xFFFF) << 16
    return (low + high) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def element_random(key: int, n: int, device) -> torch.Tensor:
    """The 32 random bits of elements 0..n-1 of a stream (int64 holding uint32)."""
    i = torch.arange(n, dtype=torch.int64, device=device)
    high = _mul32((i >> 32) & _MASK32, 0x9E3779B9)
    return _mix32((key & _MASK32) ^ _mix32((i & _MASK32) ^ high))


def _fp32_bits(v: torch.Tensor) -> torch.Tensor:
    return v.view(torch.int32).long() & _MASK32


def _from_fp32_bits(bits: torch.Tensor) -> torch.Tensor:
    return (bits - ((bits >> 31) << 32)).to(torch.int32).view(torch.float32)


def _stored_from_bits(bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    fmt = _FORMATS[dtype]
    if fmt.width == 32:
        return _from_fp32_bits(bits)
    return (bits - ((bits >> 15) << 16)).to(torch.int16).view(dtype)


def round_nearest(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """fp32 -> dtype, nearest-even, NaN stored canonically."""
    out = v.to(dtype)
    nan = torch.tensor(float("nan"), dtype=dtype, device=v.device)
    return torch.where(torch.isnan(out), nan, out)


def round_stochastic(
    v: torch.Tensor, random_bits: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    if dtype == torch.float32:
        return round_nearest(v, dtype)
    b = _fp32_bits(v)
    if dtype == torch.bfloat16:
        on_grid = _stored_from_bits(((b + (random_bits >> 16)) >> 16) & 0xFFFF, dtype)
    else:
        sign, mag = b & 0x80000000, b & 0x7FFFFFFF
        normal = _from_fp32_bits(sign | ((mag + (random_bits & 0x1FFF)) & ~0x1FFF & _MASK32))
        q = v.abs() * 16777216.0
        whole = torch.trunc(q)
        u = (random_bits >> 8).float() * 5.9604644775390625e-08
        up = (u < q - whole).float()
        subnormal = _from_fp32_bits(sign | _fp32_bits((whole + up) * 5.9604644775390625e-08))
        on_grid = round_nearest(torch.where(mag < 0x38800000, subnormal, normal), dtype)
    return torch.where(torch.isfinite(v), on_grid, round_nearest(v, dtype))


def _land(p, d, comp, random_bits, dtype, stochastic):
    """(new param in dtype, the update y rounded in, new Kahan compensation or None)."""
    y = d if comp is None else d + comp.float()
    v = p + y
    new = round_stochastic(v, random_bits, dtype) if stochastic else round_nearest(v, dtype)
    new_comp = None
    if comp is not None:
        carried = y - (new.float() - p)
        carried = torch.where(torch.isfinite(carried), carried, torch.zeros_like(carried))
        new_comp = round_nearest(carried, dtype)
    return new, y, new_comp


def _record(counters, sums, row, old, new, d, g):
    """Statistics of one tensor's step into row `row` of the tables."""
    c, s = counters[row], sums[row]
    bitflip_stats(old, new, d, c, s)
    ok = torch.isfinite(d) & torch.isfinite(old) & torch.isfinite(new) & torch.isfinite(g)
    s[Layout.SUM_G2] += (g[ok].double() ** 2).sum()


def _decoupled_decay_term(neg_lr_weight_decay: float, p: torch.Tensor) -> torch.Tensor:
    """-lr * wd * p, and 0 where p is not finite: torch scales the parameter, which leaves an
    infinite one infinite, where +inf + -inf in d would write NaN (rules.h)."""
    return torch.where(p - p == 0, neg_lr_weight_decay * p, 0.0)


def _run_step(params, grads, kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale,
              found_inf, stochastic, element):
    """element(i, p, g) -> d computes tensor i's update (and updates its state in place);
    this lands d in every parameter and records the statistics."""
    if found_inf is not None and float(found_inf) != 0.0:
        return
    for i, param in enumerate(params):
        flat = param.view(-1)
        old = flat.clone()
        p = old.float()
        g = grads[i].reshape(-1).float()
        if grad_scale is not None:  # tensor / scalar would multiply by the reciprocal
            g = g / grad_scale.reshape(()).float().expand_as(g).contiguous()
        d = element(i, p, g)
        comp = kahan_comps[i].view(-1) if kahan_comps else None
        bits = element_random(rng_keys[i], flat.numel(), flat.device) if stochastic else None
        new, y, new_comp = _land(p, d, comp, bits, param.dtype, stochastic)
        flat.copy_(new)
        if comp is not None:
            comp.copy_(new_comp)
        if counters is not None:
            _record(counters, sums, stat_rows[i], old, new, y, g)


def sgd_step(params, grads, momentum_buffers, kahan_comps, counters, sums, stat_rows, rng_keys,
             first_step, grad_scale, found_inf, lr, momentum, dampening, weight_decay, nesterov,
             maximize, stochastic):
    h = _rules.sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, maximize)

    def element(i, p, g):
        if h.maximize:
            g = -g
        if h.decay:
            g = g + h.weight_decay * p
        if h.has_momentum:
            buf = momentum_buffers[i].view(-1)
            nxt = g if first_step[i] else buf * h.momentum + h.one_minus_dampening * g
            buf.copy_(nxt)
            g = g + h.momentum * nxt if h.nesterov else nxt
        return h.neg_lr * g

    _run_step(params, grads, kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale,
              found_inf, stochastic, element)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, kahan_comps, counters, sums,
              stat_rows, rng_keys, step_sizes, bias_correction2_sqrts, grad_scale, found_inf, lr,
              beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize, stochastic):
    h = _rules.adam_hyper(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize)

    def element(i, p, g):
        if h.maximize:
            g = -g
        if h.coupled_decay:
            g = g + h.weight_decay * p
        m, v = exp_avgs[i].view(-1), exp_avg_sqs[i].view(-1)
        # torch.lerp without FMA, in the single-expression form of rules.h
        m.copy_((m if h.lerp_from_a else g) + (g - m) * h.lerp_coef)
        v.copy_(v * h.beta2 + h.one_minus_beta2 * g * g)
        second = v
        if h.amsgrad:
            v_max = max_exp_avg_sqs[i].view(-1)
            v_max.copy_(torch.maximum(v_max, v))
            second = v_max
        neg_step_size = _rules.f32(-step_sizes[i])
        bias_correction2_sqrt = _rules.f32(bias_correction2_sqrts[i])
        # torch's vectorized fp32 sqrt is not always correctly rounded; via float64 it is.
        root = torch.sqrt(second.double()).float()
        denom = root / torch.full_like(p, bias_correction2_sqrt) + h.eps
        step = neg_step_size * m / denom
        return _decoupled_decay_term(h.neg_lr_weight_decay, p) + step if h.decoupled_decay else step

    _run_step(params, grads, kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale,
              found_inf, stochastic, element)


def lion_step(params, grads, exp_avgs, kahan_comps, counters, sums, stat_rows, rng_keys,
              grad_scale, found_inf, lr, beta1, beta2, weight_decay, maximize, stochastic):
    h = _rules.lion_hyper(lr, beta1, beta2, weight_decay, maximize)

    def element(i, p, g):
        if h.maximize:
            g = -g
        m = exp_avgs[i].view(-1)
        c = h.beta1 * m + h.one_minus_beta1 * g
        m.copy_(h.beta2 * m + h.one_minus_beta2 * g)
        sign = torch.where(c > 0, 1.0, torch.where(c < 0, -1.0, c * 0.0))
        step = h.neg_lr * sign
        return _decoupled_decay_term(h.neg_lr_weight_decay, p) + step if h.decay else step

    _run_step(params, grads, kahan_comps, counters, sums, stat_rows, rng_keys, grad_scale,
              found_inf, stochastic, element)
