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
