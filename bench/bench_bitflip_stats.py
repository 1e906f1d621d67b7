"""bitflip_stats against the same-run copy of the bytes it reads and the do-it-yourself torch
path. Bytes: 2 * numel * itemsize read (plus 4 * numel for an update); nothing written."""

from __future__ import annotations

import pytest
import torch

import bitkernels as bk
from bitkernels.formats import format_of
from _sizes import sizes

DTYPES = [torch.float32, torch.bfloat16]


def pair(size, dtype):
    g = torch.Generator().manual_seed(0)
    old = torch.randn(size, generator=g).to(dtype)
    update = torch.randn(size, generator=g) * 1e-3
    return old, (old.float() + update).to(dtype), update


def diy_bitflip_counts(old, new):
    """What a user writes today: XOR the bit views and count each position with torch ops."""
    fmt = format_of(old.dtype)
    x = old.view(fmt.bits_dtype) ^ new.view(fmt.bits_dtype)
    flips = torch.stack([((x >> k) & 1).sum() for k in range(fmt.width)])
    return flips, (x != 0).sum()


@sizes(1 << 12, 1 << 20, 1 << 24)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_update", [False, True], ids=["bits", "update"])
def bench_bitflip_stats_cpu(benchmark, size, dtype, with_update):
    old, new, update = pair(size, dtype)
    out = bk.BitStats(dtype)
    benchmark.extra_info["bytes"] = 2 * old.numel() * old.element_size() + (
        4 * size if with_update else 0)
    benchmark(bk.bitflip_stats, old, new, update=update if with_update else None,
              backend="cpu", out=out)


@sizes(1 << 12, 1 << 20, 1 << 24)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def bench_copy_baseline(benchmark, size, dtype):
    """Same-run bandwidth reference: copying the bytes of one input (read + write)."""
    src = torch.randn(size).to(dtype)
    dst = torch.empty_like(src)
    benchmark.extra_info["bytes"] = 2 * src.numel() * src.element_size()
    benchmark(dst.copy_, src)


@sizes(1 << 12, 1 << 20)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def bench_diy_torch_path(benchmark, size, dtype):
    old, new, _ = pair(size, dtype)
    benchmark(diy_bitflip_counts, old, new)
