"""Triton backend. Runs on CUDA tensors, and on CPU tensors under TRITON_INTERPRET=1 (tests).

Interpreter constraints shape the code (DESIGN.md): stored values are handled as integer bits
(bf16 arithmetic is wrong there), no libdevice (popc, clz), one config per kernel.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..formats import format_of
from ..stats import Layout

# Each program counts TILES tiles of BLOCK elements into 4-bit fields (15 words fill a field),
# then commits one atomic per counter.
BLOCK = 1024
TILES = 15

FLIPS: tl.constexpr = Layout.FLIPS
CHANGED: tl.constexpr = Layout.CHANGED
LOST: tl.constexpr = Layout.LOST
ZERO: tl.constexpr = Layout.ZERO
NONFINITE: tl.constexpr = Layout.NONFINITE
NUMEL: tl.constexpr = Layout.NUMEL
STEPS: tl.constexpr = Layout.STEPS
DEPTH: tl.constexpr = Layout.DEPTH
DEPTH_BINS: tl.constexpr = Layout.DEPTH_BINS
DEPTH_MIN: tl.constexpr = Layout.DEPTH_MIN
DEPTH_MAX: tl.constexpr = Layout.DEPTH_MAX
SUM_D2: tl.constexpr = Layout.SUM_D2
SUM_P2: tl.constexpr = Layout.SUM_P2
SUM_R2: tl.constexpr = Layout.SUM_R2


@triton.jit
def _stored_to_fp32(bits, WIDTH: tl.constexpr, MANTISSA: tl.constexpr):
    """Exact fp32 value of stored bits (int32 holding the zero-extended pattern)."""
    if WIDTH == 32:
        out = bits.to(tl.float32, bitcast=True)
    elif MANTISSA == 7:  # bf16 is the top half of an fp32
        out = (bits << 16).to(tl.float32, bitcast=True)
    else:
        out = bits.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
    return out


@triton.jit
def _nibble_field_sum(nibbles, q: tl.constexpr):
    return tl.sum((nibbles >> (4 * q)) & 0xF).to(tl.int64)


@triton.jit
def bitflip_stats_kernel(old_ptr, new_ptr, update_ptr, counters_ptr, sums_ptr, n,
                         WIDTH: tl.constexpr, MANTISSA: tl.constexpr, EXPONENT: tl.constexpr,
                         BIAS: tl.constexpr, HAS_UPDATE: tl.constexpr, BLOCK: tl.constexpr,
                         TILES: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)  # 64-bit offsets: tensors may exceed 2^31 elements
    start = pid * (TILES * BLOCK)
    lanes = tl.arange(0, BLOCK)
    # nibble_j holds, in 4-bit field q, how many words had bit 4q + j set.
    nibble_0 = tl.zeros([BLOCK], dtype=tl.uint32)
    nibble_1 = tl.zeros([BLOCK], dtype=tl.uint32)
    nibble_2 = tl.zeros([BLOCK], dtype=tl.uint32)
    nibble_3 = tl.zeros([BLOCK], dtype=tl.uint32)
    changed = tl.zeros([BLOCK], dtype=tl.int32)
    lost = tl.zeros([BLOCK], dtype=tl.int32)
    zero = tl.zeros([BLOCK], dtype=tl.int32)
    nonfinite = tl.zeros([BLOCK], dtype=tl.int32)
    depth_hist = tl.zeros([DEPTH_BINS], dtype=tl.int32)
    sum_d2 = tl.zeros([BLOCK], dtype=tl.float64)
    sum_p2 = tl.zeros([BLOCK], dtype=tl.float64)
    sum_r2 = tl.zeros([BLOCK], dtype=tl.float64)
    exp_all_ones: tl.constexpr = (1 << EXPONENT) - 1

    for t in range(TILES):
        offs = start + t * BLOCK + lanes
        valid = offs < n
        a = tl.load(old_ptr + offs, mask=valid, other=0).to(tl.int32)
        b = tl.load(new_ptr + offs, mask=valid, other=0).to(tl.int32)
        if WIDTH == 16:
            a = a & 0xFFFF
            b = b & 0xFFFF
        x = (a ^ b).to(tl.uint32, bitcast=True)
        nibble_0 += x & 0x11111111
        nibble_1 += (x >> 1) & 0x11111111
        nibble_2 += (x >> 2) & 0x11111111
        nibble_3 += (x >> 3) & 0x11111111
        changed += (x != 0).to(tl.int32)

        if HAS_UPDATE:
            d_bits = tl.load(update_ptr + offs, mask=valid, other=0)
            d_abs = d_bits & 0x7FFFFFFF
            d_zero = d_abs == 0
            d_finite = d_abs < 0x7F800000
            old_exp = (a >> MANTISSA) & exp_all_ones
            old_finite = old_exp != exp_all_ones
            new_finite = ((b >> MANTISSA) & exp_all_ones) != exp_all_ones
            moving = valid & d_finite & (d_abs != 0)
            lost += (moving & (x == 0)).to(tl.int32)
            zero += (valid & d_zero).to(tl.int32)
            nonfinite += (valid & (~d_finite | ~new_finite)).to(tl.int32)

            # floor(log2|d|); a subnormal's mantissa converts to a normal fp32 exactly.
            d_exp = d_abs >> 23
            mantissa_as_f32 = (d_abs & 0x7FFFFF).to(tl.float32).to(tl.int32, bitcast=True)
            log2_d = tl.where(d_exp == 0, (mantissa_as_f32 >> 23) - 127 - 149, d_exp - 127)
            ulp_exp = tl.maximum(old_exp, 1) - BIAS - MANTISSA
            depth = tl.minimum(tl.maximum(log2_d - ulp_exp, DEPTH_MIN), DEPTH_MAX)
            depth = tl.where(old_finite, depth, DEPTH_MIN)
            depth_hist += tl.histogram(depth - DEPTH_MIN, DEPTH_BINS, mask=moving)

            # Bits of elements outside the sums are zeroed first: no inf/NaN arithmetic.
            feeds = valid & d_finite & old_finite & new_finite
            d64 = tl.where(feeds, d_bits, 0).to(tl.float32, bitcast=True).to(tl.float64)
            old64 = _stored_to_fp32(tl.where(feeds, a, 0), WIDTH, MANTISSA).to(tl.float64)
            new64 = _stored_to_fp32(tl.where(feeds, b, 0), WIDTH, MANTISSA).to(tl.float64)
            sum_d2 += d64 * d64
            sum_p2 += old64 * old64
            sum_r2 += (new64 - old64) * (new64 - old64)

    for q in tl.static_range(WIDTH // 4):
        tl.atomic_add(counters_ptr + FLIPS + 4 * q + 0, _nibble_field_sum(nibble_0, q))
        tl.atomic_add(counters_ptr + FLIPS + 4 * q + 1, _nibble_field_sum(nibble_1, q))
        tl.atomic_add(counters_ptr + FLIPS + 4 * q + 2, _nibble_field_sum(nibble_2, q))
        tl.atomic_add(counters_ptr + FLIPS + 4 * q + 3, _nibble_field_sum(nibble_3, q))
    tl.atomic_add(counters_ptr + CHANGED, tl.sum(changed).to(tl.int64))
    counted = tl.minimum(tl.maximum(n - start, 0), TILES * BLOCK).to(tl.int64)
    tl.atomic_add(counters_ptr + NUMEL, counted)
    tl.atomic_add(counters_ptr + STEPS, (pid == 0).to(tl.int64))
    if HAS_UPDATE:
        tl.atomic_add(counters_ptr + LOST, tl.sum(lost).to(tl.int64))
        tl.atomic_add(counters_ptr + ZERO, tl.sum(zero).to(tl.int64))
        tl.atomic_add(counters_ptr + NONFINITE, tl.sum(nonfinite).to(tl.int64))
        tl.atomic_add(counters_ptr + DEPTH + tl.arange(0, DEPTH_BINS), depth_hist.to(tl.int64))
        tl.atomic_add(sums_ptr + SUM_D2, tl.sum(sum_d2))
        tl.atomic_add(sums_ptr + SUM_P2, tl.sum(sum_p2))
        tl.atomic_add(sums_ptr + SUM_R2, tl.sum(sum_r2))


def bitflip_stats(old: torch.Tensor, new: torch.Tensor, update: torch.Tensor | None,
                  counters: torch.Tensor, sums: torch.Tensor) -> None:
    fmt = format_of(old.dtype)
    n = old.numel()
    old_bits = old.view(fmt.bits_dtype)
    new_bits = new.view(fmt.bits_dtype)
    update_bits = update.view(torch.int32) if update is not None else old_bits  # unread if None
    grid = (max(1, triton.cdiv(n, BLOCK * TILES)),)
    bitflip_stats_kernel[grid](
        old_bits, new_bits, update_bits, counters, sums, n,
        WIDTH=fmt.width, MANTISSA=fmt.mantissa_bits, EXPONENT=fmt.exponent_bits, BIAS=fmt.bias,
        HAS_UPDATE=update is not None, BLOCK=BLOCK, TILES=TILES)
