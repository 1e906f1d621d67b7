"""bitflip_stats against the same-run copy of the bytes it reads and the do-it-yourself torch
path. Bytes: 2 * numel * itemsize read (plus 4 * numel for an update); nothing written."""

from __future__ import annotations

import pytest
import torch

import bitkernels as bk
from _sizes import DEVICE, STEP_SIZES, sizes, synced
from bitkernels import roofline

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
BACKENDS = roofline.benchmark_backends(DEVICE)


def pair(size, dtype):
    g = torch.Generator().manual_seed(0)
    old = torch.randn(size, generator=g).to(dtype)
    update = torch.randn(size, generator=g) * 1e-3
    new = (old.float() + update).to(dtype)
    return old.to(DEVICE), new.to(DEVICE), update.to(DEVICE)


@sizes(*STEP_SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_update", [False, True], ids=["bits", "update"])
def bench_bitflip_stats(benchmark, size, dtype, backend, with_update):
    old, new, update = pair(size, dtype)
    out = bk.BitStats(dtype, DEVICE)
    benchmark.extra_info["bytes"] = 2 * old.numel() * old.element_size() + (
        4 * size if with_update else 0)
    benchmark(synced(bk.bitflip_stats), old, new, update=update if with_update else None,
              backend=backend, out=out)


@sizes(*STEP_SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def bench_copy_baseline(benchmark, size, dtype):
    """Same-run bandwidth reference: copying the bytes of one input (read + write)."""
    src = torch.randn(size).to(dtype).to(DEVICE)
    dst = torch.empty_like(src)
    benchmark.extra_info["bytes"] = 2 * src.numel() * src.element_size()
    benchmark(synced(dst.copy_), src)


@sizes(1 << 12, 1 << 20)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def bench_diy_torch_path(benchmark, size, dtype):
    old, new, _ = pair(size, dtype)
    benchmark(synced(roofline.diy_flip_counts), old, new)
