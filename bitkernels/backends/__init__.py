"""Backend registry: which implementations exist here, and which one runs a given call.

| backend   | runs on                                   | needs                              |
|-----------|-------------------------------------------|------------------------------------|
| reference | any device                                | torch (pure torch, the test oracle) |
| cpu       | CPU tensors                               | bitkernels._C                      |
| cuda      | CUDA tensors                              | bitkernels._C_cuda, a CUDA device  |
| triton    | CUDA tensors; CPU under TRITON_INTERPRET=1 | triton                             |

``backend="auto"`` picks cuda > triton on CUDA tensors and cpu on CPU tensors, and falls back to
the reference with a warning when none of those is available.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from dataclasses import dataclass
from types import ModuleType

import torch

from . import _ext

__all__ = ["NAMES", "BackendStatus", "BackendUnavailable", "available", "cpu_isa", "cpu_isas",
           "resolve"]

NAMES = ("reference", "cpu", "cuda", "triton")


class BackendUnavailable(ValueError):
    """A backend asked for by name cannot run here; the message says what is missing."""


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    reason: str  # what is missing, or where it runs

    def __bool__(self) -> bool:
        return self.available


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _triton_missing(device_type: str) -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install triton)"
    if device_type == "cpu" and not triton_interpreted():
        return ("triton runs on CPU tensors only under the interpreter: set TRITON_INTERPRET=1 "
                "before bitkernels' Triton kernels are first used")
    if device_type == "cuda" and triton_interpreted():
        return "TRITON_INTERPRET=1 is set: Triton kernels run on CPU tensors only"
    if device_type not in ("cpu", "cuda"):
        return f"the Triton backend supports cuda (and interpreted cpu) tensors, not {device_type}"
    return None


def _missing(name: str, device_type: str) -> str | None:
    """Why backend `name` cannot run on tensors of `device_type` (None: it can)."""
    if name == "reference":
        return None
    if name == "cpu":
        if device_type != "cpu":
            return f"the cpu backend runs on CPU tensors, not {device_type}"
        return _ext.load_cpu()
    if name == "cuda":
        if device_type != "cuda":
            return f"the cuda backend runs on CUDA tensors, not {device_type}"
        return _ext.load_cuda()
    if name == "triton":
        return _triton_missing(device_type)
    raise ValueError(f"backend must be 'auto' or one of {NAMES}, got {name!r}")


def available() -> dict[str, BackendStatus]:
    """Each backend with whether it can run here and, if not, what is missing."""
    gpu = "cuda" if torch.cuda.is_available() else None
    status = {"reference": BackendStatus("reference", True, "pure torch, any device")}
    why = _missing("cpu", "cpu")
    status["cpu"] = BackendStatus("cpu", why is None, why or "CPU tensors (bitkernels._C)")
    why = _missing("cuda", "cuda")
    status["cuda"] = BackendStatus("cuda", why is None, why or "CUDA tensors (bitkernels._C_cuda)")
    triton_devices = [d for d in (gpu, "cpu") if d and _missing("triton", d) is None]
    status["triton"] = BackendStatus(
        "triton", bool(triton_devices),
        f"{' and '.join(triton_devices)} tensors" if triton_devices
        else _missing("triton", gpu or "cpu"))
    return status


def cpu_isas() -> list[str]:
    """The instruction sets the cpu backend's kernels can use on this CPU, lowest first:
    "base" (x86-64), "x86-64-v3" (AVX2), "x86-64-v4" (AVX-512) and "x86-64-v4+avx512bf16"
    (AVX-512 with its bf16 conversions, which the bf16 steps round with)."""
    _require_cpu()
    return list(torch.ops.bitkernels.cpu_isas())


def cpu_isa(limit: str | None = None) -> str:
    """The instruction set the cpu backend's kernels use (the highest of cpu_isas() unless
    limited). ``limit``, one of cpu_isas() or "native", first sets the highest they may use, for
    this process: every path gives the same bits, so this is for tests and benchmarks."""
    _require_cpu()
    return torch.ops.bitkernels.cpu_isa(limit)


def _require_cpu() -> None:
    why = _ext.load_cpu()
    if why:
        raise BackendUnavailable(f"backend='cpu' is unavailable: {why}")


def _module(name: str) -> ModuleType:
    if name == "reference":
        from . import reference
        return reference
    if name == "triton":
        # Imported on first use: Triton reads TRITON_INTERPRET when kernels are decorated.
        return importlib.import_module(".triton", __name__)
    from . import native
    return native


_resolved: dict[tuple[str, str], tuple[str, ModuleType]] = {}


def resolve(backend: str, device: torch.device) -> tuple[str, ModuleType]:
    """(name, implementation module) of the backend that runs on tensors on ``device``."""
    # Availability does not change within a process (extensions load once, Triton reads
    # TRITON_INTERPRET once), so successful answers are cached: this runs on every op call.
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, got {type(backend).__name__}")
    key = (backend, device.type)
    if key not in _resolved:
        _resolved[key] = _resolve(backend, device)
    return _resolved[key]


def _resolve(backend: str, device: torch.device) -> tuple[str, ModuleType]:
    if backend == "auto":
        preference = {"cuda": ("cuda", "triton"), "cpu": ("cpu",)}.get(device.type, ())
        for name in preference:
            if _missing(name, device.type) is None:
                return name, _module(name)
        if preference:  # warned once: the answer is cached
            reasons = "; ".join(f"{n}: {_missing(n, device.type)}" for n in preference)
            warnings.warn(f"bitkernels: no compiled backend for {device.type} tensors ({reasons}); "
                          "using the slow pure-torch reference", RuntimeWarning, stacklevel=4)
        return "reference", _module("reference")
    why = _missing(backend, device.type)  # raises ValueError for unknown names
    if why is not None:
        raise BackendUnavailable(f"backend={backend!r} is unavailable: {why}")
    return backend, _module(backend)
