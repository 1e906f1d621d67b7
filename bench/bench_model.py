"""Many tensors in one step: AdamW on the parameter list of a 12-layer transformer (GPT-2 small's
148 tensors with a narrower width, so that the launch and per-tensor overheads show), ours with
statistics on and off against torch's fused and foreach AdamW."""

from __future__ import annotations

import pytest
import torch

from _sizes import DEVICE, synced
from bitkernels import roofline

DTYPES = [torch.float32, torch.bfloat16]
BACKENDS = roofline.benchmark_backends(DEVICE)


@pytest.fixture
def model_params(request, dtype):
    """GPT-2 small's tensor list at width 256 (11.7M elements); width 16 when benchmarks are
    disabled (a smoke run)."""
    width = 16 if request.config.getoption("benchmark_disable") else 256
    shapes = roofline.transformer_shapes(12, width, vocab=8192, context=512)
    return roofline.model_parameters(shapes, dtype, DEVICE)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("track", [True, False], ids=["stats", "nostats"])
def bench_model_bitkernels(benchmark, model_params, backend, track):
    opt = roofline.ours_optimizer("adamw", model_params, backend, track)
    opt.step()
    benchmark(synced(opt.step))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("impl", ["fused", "foreach"])
def bench_model_torch(benchmark, model_params, impl):
    opt = roofline.torch_optimizer("adamw", model_params, impl)
    opt.step()
    benchmark(synced(opt.step))
