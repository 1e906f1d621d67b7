"""An independent statement of the statistics contract, in numpy, for tests.

It shares nothing with the backends but the slot layout: bit patterns are read through numpy
unsigned views, floor(log2) comes from np.frexp in float64, ulp from the float64 value.
"""

from __future__ import annotations

import numpy as np
import torch

from bitkernels.formats import format_of

DEPTH_MIN, DEPTH_MAX = -40, 23


def unsigned_bits(t: torch.Tensor) -> np.ndarray:
    fmt = format_of(t.dtype)
    raw = t.detach().cpu().contiguous().view(fmt.bits_dtype).numpy()
    return raw.view(np.uint32 if fmt.width == 32 else np.uint16).astype(np.uint64).reshape(-1)


def float64_values(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy().reshape(-1)


def expected(old: torch.Tensor, new: torch.Tensor, update: torch.Tensor | None = None,
             steps: int = 1) -> dict:
    """The counters and sums one bitflip_stats call must add, as Python numbers."""
    fmt = format_of(old.dtype)
    x = unsigned_bits(old) ^ unsigned_bits(new)
    out = {
        "flips": [int(((x >> np.uint64(k)) & np.uint64(1)).sum()) for k in range(fmt.width)],
        "changed": int((x != 0).sum()),
        "numel": old.numel(),
        "steps": steps,
        "lost": 0, "zero": 0, "nonfinite": 0, "depth": [0] * 64,
        "sum_d2": 0.0, "sum_g2": 0.0, "sum_p2": 0.0, "sum_r2": 0.0,
    }
    if update is None:
        return out
    d = update.detach().cpu().float().numpy().reshape(-1).astype(np.float64)
    o, nw = float64_values(old), float64_values(new)
    d_finite = np.isfinite(d)
    moving = d_finite & (d != 0)
    out["lost"] = int((moving & (x == 0)).sum())
    out["zero"] = int((d == 0).sum())
    out["nonfinite"] = int((~d_finite | ~np.isfinite(nw)).sum())

    log2_d = np.frexp(d[moving])[1] - 1
    om = o[moving]
    with np.errstate(divide="ignore", invalid="ignore"):
        log2_old = np.frexp(np.where(np.isfinite(om), om, 1.0))[1] - 1
    ulp_exp = np.where(om == 0, fmt.min_exponent,
                       np.maximum(log2_old, fmt.min_exponent)) - fmt.mantissa_bits
    n = np.where(np.isfinite(om), log2_d - ulp_exp, DEPTH_MIN)
    bins = np.clip(n, DEPTH_MIN, DEPTH_MAX) - DEPTH_MIN
    out["depth"] = np.bincount(bins.astype(np.int64), minlength=64).tolist()

    ok = d_finite & np.isfinite(o) & np.isfinite(nw)
    out["sum_d2"] = float(np.sum(d[ok] ** 2))
    out["sum_p2"] = float(np.sum(o[ok] ** 2))
    out["sum_r2"] = float(np.sum((nw[ok] - o[ok]) ** 2))
    return out


SUM_NAMES = ("sum_d2", "sum_g2", "sum_p2", "sum_r2")


# The kernels square in fp32 and add in fp32 within a block (a few hundred elements per lane)
# before float64 (see ElementStats in bitstats.h): about 1e-6 relative, 1e-5 at worst.
SUM_RTOL = 1e-5
# They scale by 2^40 before squaring (kSquareScale in cpu/stats_block.h), so squares of values
# below 2^-103 (~1e-31) underflow: each element may lose up to 2^-206 (~1e-62) of a sum. Only a
# sum made of nothing but such values (a tensor of subnormal changes) shows it.
SUM_ATOL_PER_ELEMENT = 2.0**-206


def assert_matches(stats, want: dict) -> None:
    """Counters exactly; float64 sums to the tolerance of the kernels' blocked fp32 squares."""
    got = stats.to_dict()
    atol = max(1e-300, SUM_ATOL_PER_ELEMENT * got["numel"])
    for name, value in want.items():
        if name in SUM_NAMES:
            close = np.isclose(got[name], value, rtol=SUM_RTOL, atol=atol)
            assert close, (name, got[name], value)
        else:
            assert got[name] == value, (name, got[name], value)
