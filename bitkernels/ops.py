"""Low-level op API: validated wrappers over the backends.

Arguments are checked here, before any backend runs, with errors that name the argument;
the compiled ops repeat the essential checks for callers that use torch.ops directly.
"""

from __future__ import annotations

import torch

from . import backends
from .formats import format_of
from .stats import BitStats

__all__ = ["bitflip_stats"]


def _check_tensor(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")


def _is_dense(t: torch.Tensor) -> bool:
    """Whether t's elements exactly fill a contiguous range of its storage (any dim order)."""
    expected = 1
    dims = sorted((st, sz) for sz, st in zip(t.shape, t.stride()) if sz != 1)
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def _flat_views(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Same-shape tensors the backends can read as flat arrays, element i of each paired.

    Contiguous tensors pass unchanged. Statistics do not depend on element order, so tensors
    that are all dense in memory with the same strides (e.g. the same transpose) are read in
    storage order without a copy; anything else is made contiguous.
    """
    if all(t.is_contiguous() for t in tensors):
        return list(tensors)
    first = tensors[0]
    if all(t.stride() == first.stride() for t in tensors) and _is_dense(first):
        # The elements fill [offset, offset + numel) of each storage.
        return [t.as_strided((t.numel(),), (1,)) for t in tensors]
    return [t.contiguous() for t in tensors]


def bitflip_stats(old: torch.Tensor, new: torch.Tensor, *, update: torch.Tensor | None = None,
                  backend: str = "auto", out: BitStats | None = None) -> BitStats:
    """Bit-level statistics of the change from ``old`` to ``new``.

    XORs the stored bits of each element pair and counts, per bit position k (0 = mantissa LSB),
    the elements whose bit k differs (``flips``), the elements with any change (``changed``),
    plus ``numel`` and ``steps`` (+1 per call). Given ``update``, the intended update d that
    was rounded into ``new`` (converted to fp32), it also fills ``lost``, ``zero``,
    ``nonfinite``, the ``depth`` histogram and the float64 sums ``sum_d2``, ``sum_p2``,
    ``sum_r2`` as defined in BitStats.

    Args:
      old, new: same shape, same dtype (float32, bfloat16 or float16), same device. Any strides.
      update: optional floating tensor of the same shape and device.
      backend: "auto", "reference", "cpu", "cuda" or "triton" (see bitkernels.backends).
      out: a BitStats of the same dtype on the same device to accumulate into, without a host
        sync; by default a new one.

    Returns ``out``, or the new BitStats.
    """
    _check_tensor("old", old)
    _check_tensor("new", new)
    if not old.is_floating_point():
        raise TypeError(f"old must be a floating-point tensor, got {old.dtype}")
    fmt = format_of(old.dtype, "old.dtype")
    if new.dtype != old.dtype:
        raise TypeError(f"new has dtype {new.dtype} but old has {old.dtype}; they must match")
    if new.shape != old.shape:
        raise ValueError(f"new has shape {tuple(new.shape)} but old has {tuple(old.shape)}")
    if new.device != old.device:
        raise ValueError(f"new is on {new.device} but old is on {old.device}")
    if update is not None:
        _check_tensor("update", update)
        if not update.is_floating_point():
            raise TypeError(f"update must be a floating-point tensor, got {update.dtype}")
        if update.shape != old.shape:
            raise ValueError(f"update has shape {tuple(update.shape)} but old has "
                             f"{tuple(old.shape)}")
        if update.device != old.device:
            raise ValueError(f"update is on {update.device} but old is on {old.device}")
    if out is not None:
        if not isinstance(out, BitStats):
            raise TypeError(f"out must be a BitStats, got {type(out).__name__}")
        if out.format != fmt:
            raise TypeError(f"out holds {out.format.name} statistics but old is {fmt.name}")
        if out.device != old.device:
            raise ValueError(f"out is on {out.device} but old is on {old.device}")
    _, impl = backends.resolve(backend, old.device)

    if out is None:
        out = BitStats(fmt, old.device)
    tensors = [old, new] if update is None else [old, new, update.float()]
    tensors = _flat_views(*(t.detach() if t.requires_grad else t for t in tensors))
    impl.bitflip_stats(tensors[0], tensors[1], tensors[2] if update is not None else None,
                       out.counters, out.sums)
    return out
