"""Loading of the compiled extensions. Never raises: a missing extension is a status."""

from __future__ import annotations

import importlib
from functools import cache

import torch


@cache
def load_cpu() -> str | None:
    """Loads bitkernels._C (op schemas + CPU kernels). None on success, else why not."""
    try:
        importlib.import_module("bitkernels._C")
    except ImportError as e:
        return (f"bitkernels._C is not built ({e}); build it with "
                "`pip install --no-build-isolation -e .`")
    _register_fakes()
    return None


@cache
def cpu_module():
    """bitkernels._C itself, for its functions that are not ops (load_cpu() first)."""
    return importlib.import_module("bitkernels._C")


def _register_fakes() -> None:
    """Fake (meta) implementations, so that torch.compile and FakeTensor tracing can run the
    ops: every op only mutates its arguments in place and returns nothing, so tracing needs no
    output shapes."""
    for name in ("bitflip_stats", "sgd_step", "adam_step", "lion_step"):
        torch.library.register_fake(f"bitkernels::{name}")(_mutates_only)


def _mutates_only(*args, **kwargs) -> None:
    return None


@cache
def load_cuda() -> str | None:
    """Loads bitkernels._C_cuda (CUDA kernels). None on success, else why not."""
    why_not = load_cpu()  # the schemas the CUDA kernels register against
    if why_not:
        return why_not
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is not a CUDA build"
    try:
        importlib.import_module("bitkernels._C_cuda")
    except ImportError as e:
        return (f"bitkernels._C_cuda is not built ({e}); it is built when torch is a CUDA "
                "build and nvcc is found (BITKERNELS_CUDA=1 forces it)")
    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None
