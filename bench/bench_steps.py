"""Fused optimizer steps, ours with statistics on and off on every compiled backend, against
torch.optim's fused and foreach steps, the do-it-yourself statistics around torch's fused step,
and a copy of the bytes our step moves (bytes per element: bitkernels.roofline.step_bytes,
e.g. AdamW fp32 28). Every case records its byte count in extra_info["bytes"]."""

from __future__ import annotations

import pytest
import torch

from _sizes import DEVICE, STEP_SIZES, sizes, synced
from bitkernels import roofline
from bitkernels.formats import format_of

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
BACKENDS = roofline.benchmark_backends(DEVICE)


@sizes(*STEP_SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", roofline.OPTIMIZERS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("track", [True, False], ids=["stats", "nostats"])
def bench_step_bitkernels(benchmark, size, dtype, name, backend, track):
    opt = roofline.ours_optimizer(name, [roofline.parameter(size, dtype, DEVICE)], backend, track)
    benchmark.extra_info["bytes"] = roofline.step_bytes(name, size, format_of(dtype).width // 8)
    opt.step()  # states exist: time steady-state steps
    benchmark(synced(opt.step))


@sizes(*STEP_SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["adamw", "sgd_momentum"])
@pytest.mark.parametrize("impl", ["fused", "foreach"])
def bench_step_torch(benchmark, size, dtype, name, impl):
    opt = roofline.torch_optimizer(name, [roofline.parameter(size, dtype, DEVICE)], impl)
    width = format_of(dtype).width // 8
    benchmark.extra_info["bytes"] = roofline.step_bytes(name, size, width, width)
    opt.step()
    benchmark(synced(opt.step))


@sizes(1 << 20, 1 << 24)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("impl", [f"{b}-{t}" for b in BACKENDS for t in ("stats", "nostats")]
                         + ["torch-fused"])
def bench_step_amp(benchmark, size, dtype, impl):
    """AdamW under AMP: grad_scale (2^16, a power of two as GradScaler's) and found_inf handed
    over as torch.amp.GradScaler hands them to fused optimizers, the gradients unscaled in the
    kernel. Ours against torch's fused step, which takes them the same way."""
    params = [roofline.parameter(size, dtype, DEVICE)]
    if impl == "torch-fused":
        opt = roofline.torch_optimizer("adamw", params, "fused")
    else:
        backend, track = impl.split("-")
        opt = roofline.ours_optimizer("adamw", params, backend, track == "stats")
    opt.grad_scale = torch.full((), 2.0**16, device=DEVICE)  # 0-d, as GradScaler's
    opt.found_inf = torch.zeros((), device=DEVICE)
    benchmark.extra_info["bytes"] = roofline.step_bytes("adamw", size, format_of(dtype).width // 8)
    opt.step()
    benchmark(synced(opt.step))


@sizes(1 << 12, 1 << 20)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def bench_step_do_it_yourself(benchmark, size, dtype):
    """torch's fused AdamW with what a user writes today for the flip counts: snapshot the
    parameters, step, XOR the bit views and count each position with torch ops."""
    params = [roofline.parameter(size, dtype, DEVICE)]
    step = roofline.diy_step(roofline.torch_optimizer("adamw", params, "fused"), params)
    step()
    benchmark(synced(step))


@sizes(*STEP_SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def bench_step_copy_baseline(benchmark, size, dtype):
    """A copy of as many bytes as our AdamW step moves (read + written): the bandwidth floor."""
    nbytes = roofline.step_bytes("adamw", size, format_of(dtype).width // 8)
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=DEVICE).random_()
    dst = torch.empty_like(src)
    benchmark.extra_info["bytes"] = 2 * src.numel()
    benchmark(synced(dst.copy_), src)
