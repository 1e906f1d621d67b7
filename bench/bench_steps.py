"""Fused optimizer steps: ours with statistics on and off against torch.optim's fused and
foreach implementations, on one parameter of `size` elements. Bytes per element (DESIGN.md
roofline, fp32): AdamW 28, SGD with momentum 20, Lion 20; bf16 params: AdamW 22, SGD 14."""

from __future__ import annotations

import pytest
import torch

import bitkernels as bk
from _problems import parameter
from _sizes import sizes

DTYPES = [torch.float32, torch.bfloat16]
OPTIMIZERS = {
    "adamw": (bk.optim.AdamW, torch.optim.AdamW, dict(lr=1e-3)),
    "sgd_momentum": (bk.optim.SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9)),
    "lion": (bk.optim.Lion, None, dict(lr=1e-4)),
}


@sizes(1 << 16, 1 << 20, 1 << 24)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("track", [True, False], ids=["stats", "nostats"])
def bench_step_bitkernels(benchmark, size, dtype, name, track):
    ours, _, kwargs = OPTIMIZERS[name]
    p = parameter(size, dtype)
    opt = ours([p], track_bits=track, backend="cpu", **kwargs)
    opt.step()  # states exist: time steady-state steps
    benchmark(opt.step)


@sizes(1 << 16, 1 << 20, 1 << 24)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", [n for n, (_, theirs, _) in OPTIMIZERS.items() if theirs])
@pytest.mark.parametrize("impl", ["fused", "foreach"])
def bench_step_torch(benchmark, size, dtype, name, impl):
    _, theirs, kwargs = OPTIMIZERS[name]
    p = parameter(size, dtype)
    opt = theirs([p], **{impl: True}, **kwargs)
    opt.step()
    benchmark(opt.step)
