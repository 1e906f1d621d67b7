"""Backend x device cases shared by the tests: every backend runs where it can, and the cases it
cannot run here are skipped with the reason bitkernels.backends gives."""

from __future__ import annotations

import os

import pytest
import torch

from bitkernels import backends

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def examples(default: int) -> int:
    """max_examples of a property test: `default` normally; under HYPOTHESIS_PROFILE=thorough
    (or any other profile of conftest.py) that profile's count, for long fuzzing runs."""
    if os.environ.get("HYPOTHESIS_PROFILE", "default") == "default":
        return default
    from hypothesis import settings
    return settings.default.max_examples


def _case(name: str, device: str):
    if device == "cuda" and not torch.cuda.is_available():
        return [pytest.param(name, device, id=f"{name}-cuda",
                             marks=pytest.mark.skip(reason="no CUDA device"))]
    why = backends._missing(name, device)
    if why:
        return [pytest.param(name, device, id=f"{name}-{device}",
                             marks=pytest.mark.skip(reason=why))]
    if name == "cpu":
        # Every instruction set this CPU runs (AVX-512, AVX2 and plain loops are different
        # code): the cpu_isa mark makes the conftest fixture limit the kernels to it.
        return [pytest.param(name, device, id=f"cpu-{isa}", marks=pytest.mark.cpu_isa(isa))
                for isa in reversed(backends.cpu_isas())]
    return [pytest.param(name, device, id=f"{name}-{device}")]


def skipped(case) -> bool:
    return any(mark.name == "skip" for mark in case.marks)


BACKEND_CASES = [case for d in ("cpu", "cuda") for n in backends.NAMES
                 if not (d == "cpu" and n == "cuda") and not (d == "cuda" and n == "cpu")
                 for case in _case(n, d)]
