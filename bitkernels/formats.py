"""Facts about the stored floating-point formats bitkernels measures: fp32, bf16, fp16.

Bit positions are numbered as in the statistics contract: k = 0 is the mantissa LSB and
k = width - 1 the sign bit.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

__all__ = ["FloatFormat", "FP32", "BF16", "FP16", "FORMATS", "format_of", "ulp", "ulp_exponent",
           "bit_labels"]


@dataclass(frozen=True)
class FloatFormat:
    """One stored format. ``mantissa_bits`` is p, the stored (not counting the hidden) bits."""

    name: str
    dtype: torch.dtype
    bits_dtype: torch.dtype  # same-width signed integer dtype, for bit views
    width: int
    mantissa_bits: int
    exponent_bits: int
    bias: int

    @property
    def eps(self) -> float:
        """Machine epsilon 2^-p: the gap between 1 and the next larger value."""
        return 2.0 ** -self.mantissa_bits

    @property
    def unit_roundoff(self) -> float:
        """2^-(p+1): the largest relative error of round-to-nearest."""
        return 2.0 ** -(self.mantissa_bits + 1)

    @property
    def min_exponent(self) -> int:
        """Exponent of the smallest normal number, 1 - bias."""
        return 1 - self.bias

    @property
    def max_exponent(self) -> int:
        return (1 << self.exponent_bits) - 2 - self.bias

    @property
    def min_normal(self) -> float:
        return 2.0 ** self.min_exponent

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (self.min_exponent - self.mantissa_bits)

    @property
    def max(self) -> float:
        return (2.0 - self.eps) * 2.0 ** self.max_exponent

    @cached_property
    def bit_labels(self) -> tuple[str, ...]:
        """'mantissa', 'exponent' or 'sign' for each bit position k = 0 .. width-1."""
        p, e = self.mantissa_bits, self.exponent_bits
        return ("mantissa",) * p + ("exponent",) * e + ("sign",)

    @cached_property
    def bit_names(self) -> tuple[str, ...]:
        """Short names per position: M0 (mantissa LSB) .. E0 .. S."""
        p, e = self.mantissa_bits, self.exponent_bits
        return tuple(f"M{k}" for k in range(p)) + tuple(f"E{k}" for k in range(e)) + ("S",)

    def __repr__(self) -> str:
        return f"FloatFormat({self.name})"


FP32 = FloatFormat("fp32", torch.float32, torch.int32, 32, 23, 8, 127)
BF16 = FloatFormat("bf16", torch.bfloat16, torch.int16, 16, 7, 8, 127)
FP16 = FloatFormat("fp16", torch.float16, torch.int16, 16, 10, 5, 15)
FORMATS: dict[torch.dtype, FloatFormat] = {f.dtype: f for f in (FP32, BF16, FP16)}


def format_of(dtype: torch.dtype | FloatFormat, argname: str = "dtype") -> FloatFormat:
    """The FloatFormat of a supported dtype; TypeError naming ``argname`` otherwise."""
    if isinstance(dtype, FloatFormat):
        return dtype
    try:
        return FORMATS[dtype]
    except (KeyError, TypeError):
        raise TypeError(
            f"{argname} must be one of torch.float32, torch.bfloat16, torch.float16; got {dtype}"
        ) from None


def bit_labels(dtype: torch.dtype) -> tuple[str, ...]:
    return format_of(dtype).bit_labels


def _as_tensor(x, dtype):
    """(tensor in a supported dtype, function turning a result back into x's kind)."""
    if isinstance(x, torch.Tensor):
        fmt = format_of(dtype or x.dtype)
        return x.to(fmt.dtype), lambda t: t
    fmt = format_of(dtype or torch.float32)
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.asarray(x, dtype=np.float64)).to(fmt.dtype)
        return t, lambda r: r.double().numpy()
    if isinstance(x, numbers.Real):
        return torch.tensor(float(x), dtype=fmt.dtype), lambda r: float(r)
    raise TypeError(f"x must be a tensor, numpy array or real number, got {type(x).__name__}")


def ulp_exponent(x: torch.Tensor) -> torch.Tensor:
    """log2 ulp(x) as int32 for finite x (zero and subnormals: the smallest subnormal's)."""
    fmt = format_of(x.dtype, "x.dtype")
    e = torch.frexp(x.float()).exponent - 1  # floor(log2|x|) for finite nonzero x
    e = torch.where(x == 0, fmt.min_exponent, torch.clamp_min(e, fmt.min_exponent))
    return (e - fmt.mantissa_bits).to(torch.int32)


def ulp(x, dtype: torch.dtype | None = None):
    """Unit in the last place of x stored in ``dtype`` (default: x's own dtype, or fp32).

    ulp(x) = 2^(floor(log2|x|) - p) for normal x; the smallest subnormal for zero and
    subnormals; inf for +-inf and NaN for NaN. Accepts tensors (result in the same dtype, every
    ulp of these formats is representable), numpy arrays and Python numbers (value rounded to
    the dtype first).
    """
    t, back = _as_tensor(x, dtype)
    result = torch.pow(2.0, ulp_exponent(t).double())
    result = torch.where(torch.isinf(t), math.inf, result)
    result = torch.where(torch.isnan(t), math.nan, result)
    return back(result.to(t.dtype))
