"""Triton backend. Runs on CUDA tensors, and on CPU tensors under TRITON_INTERPRET=1 (tests).

The kernels mirror csrc/include/bitkernels (formats.h, bitstats.h, rounding.h, rules.h) with the
same fp32 operations in the same order: IEEE division and square root (div_rn, sqrt_rn) and no
FMA contraction (enable_fp_fusion=False), so results match the CPU kernel bit for bit.
Interpreter constraints shape the code (DESIGN.md): stored values are handled as integer bits
(bf16 arithmetic is wrong there), no libdevice (popc, clz), one config per kernel, and 32-bit
constants above 2^31 are built with tl.full (a cast of such a literal multiplies in float).

Multi-tensor steps use pointer tables: one program per chunk of TILES * BLOCK elements of one
tensor, the chunk table saying which tensor and where.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import triton
import triton.language as tl

from .. import rules
from ..formats import format_of
from ..stats import Layout

BLOCK = 1024
TILES = 15  # tiles per program: a 4-bit field of the flip counters holds 15 words

FLIPS = tl.constexpr(Layout.FLIPS)
CHANGED = tl.constexpr(Layout.CHANGED)
LOST = tl.constexpr(Layout.LOST)
ZERO = tl.constexpr(Layout.ZERO)
NONFINITE = tl.constexpr(Layout.NONFINITE)
NUMEL = tl.constexpr(Layout.NUMEL)
STEPS = tl.constexpr(Layout.STEPS)
DEPTH = tl.constexpr(Layout.DEPTH)
DEPTH_BINS = tl.constexpr(Layout.DEPTH_BINS)
DEPTH_MIN = tl.constexpr(Layout.DEPTH_MIN)
DEPTH_MAX = tl.constexpr(Layout.DEPTH_MAX)
NUM_COUNTERS = tl.constexpr(Layout.NUM_COUNTERS)
NUM_SUMS = tl.constexpr(Layout.NUM_SUMS)
SUM_D2 = tl.constexpr(Layout.SUM_D2)
SUM_G2 = tl.constexpr(Layout.SUM_G2)
SUM_P2 = tl.constexpr(Layout.SUM_P2)
SUM_R2 = tl.constexpr(Layout.SUM_R2)


# ---- formats.h / rounding.h -------------------------------------------------------------------
@triton.jit
def _to_fp32(bits, WIDTH: tl.constexpr, MANTISSA: tl.constexpr):
    """Exact fp32 value of stored bits (int32 holding the zero-extended pattern)."""
    if WIDTH == 32:
        out = bits.to(tl.float32, bitcast=True)
    elif MANTISSA == 7:  # bf16 is the top half of an fp32
        out = (bits << 16).to(tl.float32, bitcast=True)
    else:
        out = bits.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
    return out


@triton.jit
def _finite(bits, MANTISSA: tl.constexpr, EXPONENT: tl.constexpr):
    ones: tl.constexpr = (1 << EXPONENT) - 1
    return ((bits >> MANTISSA) & ones) != ones


@triton.jit
def _round_nearest(v, WIDTH: tl.constexpr, MANTISSA: tl.constexpr):
    """fp32 -> stored bits (int32), nearest-even, canonical NaN (rounding.h)."""
    b = v.to(tl.int32, bitcast=True)
    mag = b & 0x7FFFFFFF
    is_nan = mag > 0x7F800000
    if WIDTH == 32:
        out = tl.where(is_nan, 0x7FC00000, b)
    elif MANTISSA == 7:
        u = b.to(tl.uint32, bitcast=True)
        rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).to(tl.int32)
        out = tl.where(is_nan, 0x7FC0, rounded)
    else:
        sign = (b >> 16) & 0x8000
        subnormal = (mag.to(tl.float32, bitcast=True) + 0.5).to(tl.int32, bitcast=True) - 0x3F000000
        normal = ((mag - 0x38000000 + 0xFFF + ((mag >> 13) & 1)) >> 13)
        out = tl.where(mag < 0x38800000, subnormal, normal)
        out = tl.where(mag >= 0x47800000, 0x7C00, out)
        out = tl.where(is_nan, 0x7E00, out | sign)
    return out


@triton.jit
def _mix32(x):
    x = x ^ (x >> 16)
    x = x * 0x7FEB352D
    x = x ^ (x >> 15)
    x = x * tl.full(x.shape, 0x846CA68B, tl.uint32)
    return x ^ (x >> 16)


@triton.jit
def _element_random(key, offs):
    """32 random bits (uint32) for element indices offs (int64) of stream `key` (uint32)."""
    low = (offs & 0xFFFFFFFF).to(tl.uint32)
    high = (offs >> 32).to(tl.uint32) * tl.full(offs.shape, 0x9E3779B9, tl.uint32)
    return _mix32(key ^ _mix32(low ^ high))


@triton.jit
def _round_stochastic(v, r, WIDTH: tl.constexpr, MANTISSA: tl.constexpr):
    b = v.to(tl.int32, bitcast=True)
    finite = (b & 0x7F800000) != 0x7F800000
    nearest = _round_nearest(v, WIDTH, MANTISSA)
    if WIDTH == 32:
        out = nearest
    elif MANTISSA == 7:
        u = b.to(tl.uint32, bitcast=True)
        out = tl.where(finite, ((u + (r >> 16)) >> 16).to(tl.int32), nearest)
    else:
        sign = b & tl.full(b.shape, -2147483648, tl.int32)
        mag = b & 0x7FFFFFFF
        noise = (r & 0x1FFF).to(tl.int32)
        normal = (sign | ((mag + noise) & ~0x1FFF)).to(tl.float32, bitcast=True)
        q = mag.to(tl.float32, bitcast=True) * 16777216.0
        whole = q.to(tl.int32).to(tl.float32)  # q < 2^10: truncation is exact
        u = (r >> 8).to(tl.int32).to(tl.float32) * 5.9604644775390625e-08
        up = tl.where(u < q - whole, 1.0, 0.0)
        sub_mag = ((whole + up) * 5.9604644775390625e-08).to(tl.int32, bitcast=True)
        subnormal = (sign | sub_mag).to(tl.float32, bitcast=True)
        on_grid = tl.where(mag < 0x38800000, subnormal, normal)
        out = tl.where(finite, _round_nearest(on_grid, WIDTH, MANTISSA), nearest)
    return out


@triton.jit
def _land(p, d, comp_bits, r, WIDTH: tl.constexpr, MANTISSA: tl.constexpr,
          STOCHASTIC: tl.constexpr, KAHAN: tl.constexpr):
    """(new stored bits, update rounded in, new Kahan bits): rules.h land()."""
    if KAHAN:
        y = d + _to_fp32(comp_bits, WIDTH, MANTISSA)
    else:
        y = d
    v = p + y
    if STOCHASTIC:
        new_bits = _round_stochastic(v, r, WIDTH, MANTISSA)
    else:
        new_bits = _round_nearest(v, WIDTH, MANTISSA)
    if KAHAN:
        carried = y - (_to_fp32(new_bits, WIDTH, MANTISSA) - p)
        ok = (carried.to(tl.int32, bitcast=True) & 0x7F800000) != 0x7F800000
        comp = tl.where(ok, _round_nearest(carried, WIDTH, MANTISSA), 0)
    else:
        comp = comp_bits
    return new_bits, y, comp


# ---- bitstats.h -------------------------------------------------------------------------------
@triton.jit
def _accumulate(nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist,
                sum_d2, sum_g2, sum_p2, sum_r2, a, b, d_bits, g, valid,
                HAS_UPDATE: tl.constexpr, MANTISSA: tl.constexpr, EXPONENT: tl.constexpr,
                BIAS: tl.constexpr, WIDTH: tl.constexpr):
    """Adds one tile's elements (old bits a, new bits b, update bits, gradient) to the
    accumulators; invalid lanes must carry a = b = 0 and d = 0."""
    x = (a ^ b).to(tl.uint32, bitcast=True)
    nibble_0 += x & 0x11111111
    nibble_1 += (x >> 1) & 0x11111111
    nibble_2 += (x >> 2) & 0x11111111
    nibble_3 += (x >> 3) & 0x11111111
    changed += (x != 0).to(tl.int32)
    if HAS_UPDATE:
        d_abs = d_bits & 0x7FFFFFFF
        d_zero = d_abs == 0
        d_finite = d_abs < 0x7F800000
        exp_ones: tl.constexpr = (1 << EXPONENT) - 1
        old_exp = (a >> MANTISSA) & exp_ones
        old_finite = old_exp != exp_ones
        new_finite = _finite(b, MANTISSA, EXPONENT)
        moving = valid & d_finite & (d_abs != 0)
        lost += (moving & (x == 0)).to(tl.int32)
        zero += (valid & d_zero).to(tl.int32)
        nonfinite += (valid & (~d_finite | ~new_finite)).to(tl.int32)
        # floor(log2|d|); a subnormal's mantissa converts to a normal fp32 exactly
        d_exp = d_abs >> 23
        mantissa_exp = ((d_abs & 0x7FFFFF).to(tl.float32).to(tl.int32, bitcast=True) >> 23)
        log2_d = tl.where(d_exp == 0, mantissa_exp - 127 - 149, d_exp - 127)
        ulp_exp = tl.maximum(old_exp, 1) - BIAS - MANTISSA
        depth = tl.minimum(tl.maximum(log2_d - ulp_exp, DEPTH_MIN), DEPTH_MAX)
        depth = tl.where(old_finite, depth, DEPTH_MIN)
        hist += tl.histogram(depth - DEPTH_MIN, DEPTH_BINS, mask=moving)
        # float64 sums over elements whose old, new and d are finite (zeroed bits first: no
        # inf/NaN arithmetic)
        feeds = valid & d_finite & old_finite & new_finite
        d64 = tl.where(feeds, d_bits, 0).to(tl.float32, bitcast=True).to(tl.float64)
        old64 = _to_fp32(tl.where(feeds, a, 0), WIDTH, MANTISSA).to(tl.float64)
        new64 = _to_fp32(tl.where(feeds, b, 0), WIDTH, MANTISSA).to(tl.float64)
        g_ok = feeds & ((g.to(tl.int32, bitcast=True) & 0x7F800000) != 0x7F800000)
        g64 = tl.where(g_ok, g, 0.0).to(tl.float64)
        sum_d2 += d64 * d64
        sum_g2 += g64 * g64
        sum_p2 += old64 * old64
        sum_r2 += (new64 - old64) * (new64 - old64)
    return (nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist,
            sum_d2, sum_g2, sum_p2, sum_r2)


@triton.jit
def _zero_accumulators(BLOCK: tl.constexpr):
    """The accumulators _accumulate() takes: nibble_j holds, in 4-bit field q, how many words
    had bit 4q + j set (at most 15 tiles)."""
    return (tl.zeros([BLOCK], dtype=tl.uint32), tl.zeros([BLOCK], dtype=tl.uint32),
            tl.zeros([BLOCK], dtype=tl.uint32), tl.zeros([BLOCK], dtype=tl.uint32),
            tl.zeros([BLOCK], dtype=tl.int32), tl.zeros([BLOCK], dtype=tl.int32),
            tl.zeros([BLOCK], dtype=tl.int32), tl.zeros([BLOCK], dtype=tl.int32),
            tl.zeros([DEPTH_BINS], dtype=tl.int32), tl.zeros([BLOCK], dtype=tl.float64),
            tl.zeros([BLOCK], dtype=tl.float64), tl.zeros([BLOCK], dtype=tl.float64),
            tl.zeros([BLOCK], dtype=tl.float64))


@triton.jit
def _nibble_field_sum(nibbles, q: tl.constexpr):
    return tl.sum((nibbles >> (4 * q)) & 0xF).to(tl.int64)


@triton.jit
def _commit(counters, sums, nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero,
            nonfinite, hist, sum_d2, sum_g2, sum_p2, sum_r2, counted, new_step,
            HAS_UPDATE: tl.constexpr, WIDTH: tl.constexpr):
    """One atomic per counter into a BitStats row (counters, sums point at the row)."""
    for q in tl.static_range(WIDTH // 4):
        tl.atomic_add(counters + FLIPS + 4 * q + 0, _nibble_field_sum(nibble_0, q))
        tl.atomic_add(counters + FLIPS + 4 * q + 1, _nibble_field_sum(nibble_1, q))
        tl.atomic_add(counters + FLIPS + 4 * q + 2, _nibble_field_sum(nibble_2, q))
        tl.atomic_add(counters + FLIPS + 4 * q + 3, _nibble_field_sum(nibble_3, q))
    tl.atomic_add(counters + CHANGED, tl.sum(changed).to(tl.int64))
    tl.atomic_add(counters + NUMEL, counted.to(tl.int64))
    tl.atomic_add(counters + STEPS, new_step.to(tl.int64))
    if HAS_UPDATE:
        tl.atomic_add(counters + LOST, tl.sum(lost).to(tl.int64))
        tl.atomic_add(counters + ZERO, tl.sum(zero).to(tl.int64))
        tl.atomic_add(counters + NONFINITE, tl.sum(nonfinite).to(tl.int64))
        tl.atomic_add(counters + DEPTH + tl.arange(0, DEPTH_BINS), hist.to(tl.int64))
        tl.atomic_add(sums + SUM_D2, tl.sum(sum_d2))
        tl.atomic_add(sums + SUM_G2, tl.sum(sum_g2))
        tl.atomic_add(sums + SUM_P2, tl.sum(sum_p2))
        tl.atomic_add(sums + SUM_R2, tl.sum(sum_r2))


# ---- bitflip_stats -----------------------------------------------------------------------------
@triton.jit
def bitflip_stats_kernel(old_ptr, new_ptr, update_ptr, counters_ptr, sums_ptr, n,
                         WIDTH: tl.constexpr, MANTISSA: tl.constexpr, EXPONENT: tl.constexpr,
                         BIAS: tl.constexpr, HAS_UPDATE: tl.constexpr, BLOCK: tl.constexpr,
                         TILES: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)  # 64-bit offsets: tensors may exceed 2^31 elements
    start = pid * (TILES * BLOCK)
    lanes = tl.arange(0, BLOCK)
    (nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist, sum_d2, sum_g2,
     sum_p2, sum_r2) = _zero_accumulators(BLOCK)
    tiles = tl.minimum(tl.cdiv(tl.maximum(n - start, 0), BLOCK), TILES)
    for t in range(0, tiles):
        offs = start + t * BLOCK + lanes
        valid = offs < n
        a = tl.load(old_ptr + offs, mask=valid, other=0).to(tl.int32)
        b = tl.load(new_ptr + offs, mask=valid, other=0).to(tl.int32)
        if WIDTH == 16:
            a = a & 0xFFFF
            b = b & 0xFFFF
        if HAS_UPDATE:
            d_bits = tl.load(update_ptr + offs, mask=valid, other=0)
        else:
            d_bits = a
        (nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist, sum_d2,
         sum_g2, sum_p2, sum_r2) = _accumulate(
            nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist, sum_d2,
            sum_g2, sum_p2, sum_r2, a, b, d_bits, tl.zeros([BLOCK], dtype=tl.float32), valid,
            HAS_UPDATE, MANTISSA, EXPONENT, BIAS, WIDTH)
    counted = tl.minimum(tl.maximum(n - start, 0), TILES * BLOCK)
    _commit(counters_ptr, sums_ptr, nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero,
            nonfinite, hist, sum_d2, sum_g2, sum_p2, sum_r2, counted, (pid == 0).to(tl.int32),
            HAS_UPDATE, WIDTH)


def _ieee(device: torch.device):
    """Under the interpreter, numpy runs the arithmetic: inf/NaN inputs are meant to propagate
    silently, as on the GPU."""
    return np.errstate(all="ignore") if device.type == "cpu" else contextlib.nullcontext()


def bitflip_stats(old: torch.Tensor, new: torch.Tensor, update: torch.Tensor | None,
                  counters: torch.Tensor, sums: torch.Tensor) -> None:
    fmt = format_of(old.dtype)
    n = old.numel()
    old_bits = old.view(fmt.bits_dtype)
    new_bits = new.view(fmt.bits_dtype)
    update_bits = update.view(torch.int32) if update is not None else old_bits  # unread if None
    grid = (max(1, triton.cdiv(n, BLOCK * TILES)),)
    with _ieee(old.device):
        bitflip_stats_kernel[grid](
            old_bits, new_bits, update_bits, counters, sums, n,
            WIDTH=fmt.width, MANTISSA=fmt.mantissa_bits, EXPONENT=fmt.exponent_bits,
            BIAS=fmt.bias, HAS_UPDATE=update is not None, BLOCK=BLOCK, TILES=TILES)


# ---- fused optimizer steps (rules.h) -------------------------------------------------------------
RULE_SGD = tl.constexpr(0)
RULE_ADAM = tl.constexpr(1)
RULE_LION = tl.constexpr(2)


@triton.jit
def _pick(flag: tl.constexpr, if_set, if_clear):
    if flag:
        out = if_set
    else:
        out = if_clear
    return out


@triton.jit
def _decoupled_decay_term(neg_lr_weight_decay, p):
    # 0 where p is not finite, as rules.h: torch's p * (1 - lr * wd) leaves infinities alone
    return tl.where(p - p == 0.0, neg_lr_weight_decay * p, 0.0)


@triton.jit
def step_kernel(chunks, ptrs, meta, adam_scalars, hyper, counters, sums, grad_scale_ptr,
                found_inf_ptr, RULE: tl.constexpr, FLAG_0: tl.constexpr, FLAG_1: tl.constexpr,
                FLAG_2: tl.constexpr, FLAG_3: tl.constexpr, MAXIMIZE: tl.constexpr,
                STOCHASTIC: tl.constexpr, KAHAN: tl.constexpr, TRACK: tl.constexpr,
                HAS_SCALE: tl.constexpr, HAS_FOUND_INF: tl.constexpr, WIDTH: tl.constexpr,
                MANTISSA: tl.constexpr, EXPONENT: tl.constexpr, BIAS: tl.constexpr,
                BLOCK: tl.constexpr, TILES: tl.constexpr):
    """One chunk of one tensor. Per tensor t: ptrs[t] = (param, grad, state 0..2, Kahan
    compensation) addresses; meta[t] = (numel, stats row, stream key, SGD first step);
    adam_scalars[t] = (-step size, sqrt(1 - beta2^t)). hyper: the rule's fp32 scalars. Flags:
    SGD (momentum, decay, nesterov), Adam (lerp from exp_avg, coupled decay, decoupled decay,
    amsgrad), Lion (decay)."""
    c = tl.program_id(0)
    t = tl.load(chunks + 2 * c)
    start = tl.load(chunks + 2 * c + 1)
    n = tl.load(meta + 4 * t)
    row = tl.load(meta + 4 * t + 1)
    key = tl.load(meta + 4 * t + 2).to(tl.uint32)
    first = tl.load(meta + 4 * t + 3) != 0
    if WIDTH == 32:
        param_ptr = tl.load(ptrs + 6 * t).to(tl.pointer_type(tl.int32))
        grad_ptr = tl.load(ptrs + 6 * t + 1).to(tl.pointer_type(tl.int32))
        comp_ptr = tl.load(ptrs + 6 * t + 5).to(tl.pointer_type(tl.int32))
    else:
        param_ptr = tl.load(ptrs + 6 * t).to(tl.pointer_type(tl.int16))
        grad_ptr = tl.load(ptrs + 6 * t + 1).to(tl.pointer_type(tl.int16))
        comp_ptr = tl.load(ptrs + 6 * t + 5).to(tl.pointer_type(tl.int16))
    s0_ptr = tl.load(ptrs + 6 * t + 2).to(tl.pointer_type(tl.float32))
    s1_ptr = tl.load(ptrs + 6 * t + 3).to(tl.pointer_type(tl.float32))
    s2_ptr = tl.load(ptrs + 6 * t + 4).to(tl.pointer_type(tl.float32))
    h0 = tl.load(hyper)
    h1 = tl.load(hyper + 1)
    h2 = tl.load(hyper + 2)
    h3 = tl.load(hyper + 3)
    h4 = tl.load(hyper + 4)
    h5 = tl.load(hyper + 5)
    if HAS_FOUND_INF:  # AMP found inf/NaN gradients: every lane is masked off
        n = tl.where(tl.load(found_inf_ptr) == 0.0, n, 0)
    if HAS_SCALE:
        scale = tl.load(grad_scale_ptr)
    else:
        scale = 1.0
    lanes = tl.arange(0, BLOCK)
    (nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist, sum_d2, sum_g2,
     sum_p2, sum_r2) = _zero_accumulators(BLOCK)
    # only tiles that hold elements (at most TILES: the flip counters' capacity)
    tiles = tl.minimum(tl.cdiv(tl.maximum(n - start, 0), BLOCK), TILES)
    for tile in range(0, tiles):
        offs = start + tile * BLOCK + lanes
        valid = offs < n
        a = tl.load(param_ptr + offs, mask=valid, other=0).to(tl.int32)
        g_bits = tl.load(grad_ptr + offs, mask=valid, other=0).to(tl.int32)
        if WIDTH == 16:
            a = a & 0xFFFF
            g_bits = g_bits & 0xFFFF
        p = _to_fp32(a, WIDTH, MANTISSA)
        g = _to_fp32(g_bits, WIDTH, MANTISSA)
        if HAS_SCALE:
            g = tl.div_rn(g, scale)  # unscaled exactly as torch does
        g_unscaled = g
        g = _pick(MAXIMIZE, -g, g)
        if RULE == RULE_SGD:  # h: -lr, momentum, 1 - dampening, weight decay
            g = _pick(FLAG_1, g + h3 * p, g)
            if FLAG_0:
                buf = tl.load(s0_ptr + offs, mask=valid, other=0.0)
                buf = tl.where(first, g, buf * h1 + h2 * g)
                tl.store(s0_ptr + offs, buf, mask=valid)
                g = _pick(FLAG_2, g + h1 * buf, buf)
            d = h0 * g
        elif RULE == RULE_ADAM:  # h: lerp coef, beta2, 1 - beta2, eps, weight decay, -lr*wd
            g = _pick(FLAG_1, g + h4 * p, g)
            m = tl.load(s0_ptr + offs, mask=valid, other=0.0)
            v = tl.load(s1_ptr + offs, mask=valid, other=0.0)
            m = _pick(FLAG_0, m, g) + (g - m) * h0
            v = v * h1 + h2 * g * g
            tl.store(s0_ptr + offs, m, mask=valid)
            tl.store(s1_ptr + offs, v, mask=valid)
            if FLAG_3:
                v_max = tl.load(s2_ptr + offs, mask=valid, other=0.0)
                v_max = tl.where((v_max != v_max) | (v_max > v), v_max, v)
                tl.store(s2_ptr + offs, v_max, mask=valid)
                second = v_max
            else:
                second = v
            neg_step_size = tl.load(adam_scalars + 2 * t)
            bias_correction2_sqrt = tl.load(adam_scalars + 2 * t + 1)
            denom = tl.div_rn(tl.sqrt_rn(second), bias_correction2_sqrt) + h3
            step = tl.div_rn(neg_step_size * m, denom)
            d = _pick(FLAG_2, _decoupled_decay_term(h5, p) + step, step)
        else:  # Lion. h: beta1, 1 - beta1, beta2, 1 - beta2, -lr, -lr*wd
            m = tl.load(s0_ptr + offs, mask=valid, other=0.0)
            interp = h0 * m + h1 * g
            m = h2 * m + h3 * g
            tl.store(s0_ptr + offs, m, mask=valid)
            sign = tl.where(interp > 0, 1.0, tl.where(interp < 0, -1.0, interp * 0.0))
            step = h4 * sign
            d = _pick(FLAG_0, _decoupled_decay_term(h5, p) + step, step)
        if KAHAN:
            comp_bits = tl.load(comp_ptr + offs, mask=valid, other=0).to(tl.int32)
            if WIDTH == 16:
                comp_bits = comp_bits & 0xFFFF
        else:
            comp_bits = a
        if STOCHASTIC:
            r = _element_random(key, offs)
        else:
            r = offs.to(tl.uint32)
        new_bits, y, comp_bits = _land(p, d, comp_bits, r, WIDTH, MANTISSA, STOCHASTIC, KAHAN)
        if WIDTH == 32:
            tl.store(param_ptr + offs, new_bits, mask=valid)
        else:
            tl.store(param_ptr + offs, new_bits.to(tl.int16), mask=valid)
        if KAHAN:
            tl.store(comp_ptr + offs, comp_bits.to(tl.int16), mask=valid)
        if TRACK:
            (nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist, sum_d2,
             sum_g2, sum_p2, sum_r2) = _accumulate(
                nibble_0, nibble_1, nibble_2, nibble_3, changed, lost, zero, nonfinite, hist,
                sum_d2, sum_g2, sum_p2, sum_r2, tl.where(valid, a, 0),
                tl.where(valid, new_bits, 0), tl.where(valid, y.to(tl.int32, bitcast=True), 0),
                tl.where(valid, g_unscaled, 0.0), valid, True, MANTISSA, EXPONENT, BIAS, WIDTH)
    if TRACK:
        counted = tl.minimum(tl.maximum(n - start, 0), TILES * BLOCK)
        new_step = (start == 0).to(tl.int32)
        if HAS_FOUND_INF:
            new_step = tl.where(tl.load(found_inf_ptr) == 0.0, new_step, 0)
        _commit(counters + row * NUM_COUNTERS, sums + row * NUM_SUMS, nibble_0, nibble_1,
                nibble_2, nibble_3, changed, lost, zero, nonfinite, hist, sum_d2, sum_g2,
                sum_p2, sum_r2, counted, new_step, True, WIDTH)


def _on_device(values: list, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """values as a 1-D tensor on device. To a GPU through pinned memory and a non-blocking copy:
    a copy from pageable memory synchronizes with the stream, so the host could not queue work
    ahead of the GPU. The caching host allocator keeps the block until the copy is done."""
    if device.type == "cpu":
        return torch.tensor(values, dtype=dtype)
    return torch.tensor(values, dtype=dtype, pin_memory=True).to(device, non_blocking=True)


def _launch_step(rule, params, grads, states, kahan_comps, counters, sums, stat_rows, rng_keys,
                 first_step, adam_scalars, grad_scale, found_inf, hyper, flags, maximize,
                 stochastic):
    if not params:
        return
    device = params[0].device
    fmt = format_of(params[0].dtype)
    chunk = BLOCK * TILES
    # The kernel's integer tables in one array (chunks, then ptrs, then meta) and its fp32
    # scalars in another: two copies to the device per step. Every part starts on 16 bytes, as
    # separate tensors would (Triton specializes kernels on their pointers' alignment): chunks
    # come in pairs and ptrs in sixes of int64, and the scalars are padded to four floats.
    chunks, ptrs, meta = [], [], []
    for i, p in enumerate(params):
        chunks += [x for s in range(0, max(p.numel(), 1), chunk) for x in (i, s)]
        ptrs += [p.data_ptr(), grads[i].data_ptr()]
        ptrs += [s[i].data_ptr() if s else 0 for s in states] + [0] * (3 - len(states))
        ptrs.append(kahan_comps[i].data_ptr() if kahan_comps else 0)
        meta += [p.numel(), stat_rows[i] if counters is not None else 0,
                 rng_keys[i] & rules.MASK32, int(bool(first_step[i]))]
    ints = _on_device(chunks + ptrs + meta, torch.int64, device)
    ptrs_at, meta_at = len(chunks), len(chunks) + len(ptrs)
    scalars = ([x for pair in adam_scalars for x in pair] if adam_scalars
               else [0.0, 0.0] * len(params))
    scalars += [0.0] * (-len(scalars) % 4)
    floats = _on_device(scalars + list(hyper) + [0.0] * (6 - len(hyper)), torch.float32, device)
    dummy = floats  # an unread pointer argument
    flags = list(flags) + [False] * (4 - len(flags))
    launch_options = {} if device.type == "cpu" else {"enable_fp_fusion": False}
    with _ieee(device):
        step_kernel[(len(chunks) // 2,)](
            ints[:ptrs_at], ints[ptrs_at:meta_at], ints[meta_at:],
            floats[:len(scalars)], floats[len(scalars):],
            counters if counters is not None else dummy,
            sums if sums is not None else dummy,
            grad_scale if grad_scale is not None else dummy,
            found_inf if found_inf is not None else dummy,
            RULE=rule, FLAG_0=flags[0], FLAG_1=flags[1], FLAG_2=flags[2], FLAG_3=flags[3],
            MAXIMIZE=bool(maximize), STOCHASTIC=bool(stochastic) and fmt.width == 16,
            KAHAN=bool(kahan_comps), TRACK=counters is not None,
            HAS_SCALE=grad_scale is not None,
            HAS_FOUND_INF=found_inf is not None, WIDTH=fmt.width, MANTISSA=fmt.mantissa_bits,
            EXPONENT=fmt.exponent_bits, BIAS=fmt.bias, BLOCK=BLOCK, TILES=TILES, **launch_options)


def sgd_step(params, grads, momentum_buffers, kahan_comps, counters, sums, stat_rows, rng_keys,
             first_step, grad_scale, found_inf, lr, momentum, dampening, weight_decay, nesterov,
             maximize, stochastic):
    h = rules.sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, maximize)
    _launch_step(0, params, grads, [momentum_buffers] if h.has_momentum else [], kahan_comps,
                 counters, sums, stat_rows, rng_keys, first_step, None, grad_scale, found_inf,
                 [h.neg_lr, h.momentum, h.one_minus_dampening, h.weight_decay],
                 [h.has_momentum, h.decay, h.nesterov], h.maximize, stochastic)


def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, kahan_comps, counters, sums,
              stat_rows, rng_keys, step_sizes, bias_correction2_sqrts, grad_scale, found_inf, lr,
              beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize, stochastic):
    h = rules.adam_hyper(lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize)
    states = [exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if h.amsgrad else [])
    scalars = [[rules.f32(-s), rules.f32(b)] for s, b in zip(step_sizes, bias_correction2_sqrts)]
    _launch_step(1, params, grads, states, kahan_comps, counters, sums, stat_rows, rng_keys,
                 [False] * len(params), scalars, grad_scale, found_inf,
                 [h.lerp_coef, h.beta2, h.one_minus_beta2, h.eps, h.weight_decay,
                  h.neg_lr_weight_decay],
                 [h.lerp_from_a, h.coupled_decay, h.decoupled_decay, h.amsgrad], h.maximize,
                 stochastic)


def lion_step(params, grads, exp_avgs, kahan_comps, counters, sums, stat_rows, rng_keys,
              grad_scale, found_inf, lr, beta1, beta2, weight_decay, maximize, stochastic):
    h = rules.lion_hyper(lr, beta1, beta2, weight_decay, maximize)
    _launch_step(2, params, grads, [exp_avgs], kahan_comps, counters, sums, stat_rows, rng_keys,
                 [False] * len(params), None, grad_scale, found_inf,
                 [h.beta1, h.one_minus_beta1, h.beta2, h.one_minus_beta2, h.neg_lr,
                  h.neg_lr_weight_decay],
                 [h.decay], h.maximize, stochastic)
