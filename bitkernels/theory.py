"""The theory note's calculators, next to the exact float facts they are measured against.

Two kinds of function live here, and every docstring says which one it is:

* **Exact float facts** of the stored formats: ``machine_eps``, ``unit_roundoff``,
  ``mantissa_bits``, ``ulp`` and ``update_is_lost``. They are what the kernels' counters obey
  element by element (``update_is_lost`` is the ``lost`` counter's rule).
* **Heuristics of the theory note** (bit-level change potential and activation energy):
  ``ratio_R``, ``bit_depth``, ``activation_energy``, ``regime``, ``flip_probability``,
  ``information_per_update``, ``min_precision``, ``dynamic_scale``, ``channel_capacity`` and
  ``effective_update``, implemented as the note writes them. They compare a whole-tensor
  gradient norm with the machine epsilon (2^-p, the spacing at 1.0), not an element with the
  ulp of its own value, so they are a model; ``compare`` puts their per-bit flip probabilities
  beside the measured ones, and the update-depth histogram of BitStats gives the exact
  per-element version of ``bit_depth`` (depth n = floor(log2(|d| / ulp(old)))).

Arguments may be Python floats, numpy arrays (or lists) or torch tensors; results come back as
the same kind (floats as float, arrays as float64 arrays, tensors as float64 tensors on their
device).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import numpy as np
import torch

from .formats import FloatFormat, format_of
from .formats import ulp as _ulp

__all__ = [
    "machine_eps", "unit_roundoff", "mantissa_bits", "ulp", "update_is_lost",
    "ratio_R", "bit_depth", "activation_energy", "regime", "flip_probability",
    "information_per_update", "min_precision", "dynamic_scale", "channel_capacity",
    "effective_update", "compare", "REGIMES",
]

REGIMES = ("underflow", "effective", "saturation")

DType = torch.dtype | FloatFormat


def _numeric(x: Any, argname: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """x as a float64 tensor, and the function that turns a result back into x's kind."""
    if isinstance(x, torch.Tensor):
        return x.detach().double(), lambda r: r
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float64)), lambda r: r.cpu().numpy()
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return torch.tensor(float(x), dtype=torch.float64), lambda r: r.item()
    if isinstance(x, (list, tuple)):
        return _numeric(np.asarray(x, dtype=np.float64), argname)
    raise TypeError(f"{argname} must be a real number, numpy array or torch tensor, "
                    f"got {type(x).__name__}")


# ---- exact float facts ---------------------------------------------------------------------

def machine_eps(dtype: DType) -> float:
    """Exact: eps = 2^-p, the spacing of the format's numbers at 1.0 (p stored mantissa bits:
    23 fp32, 7 bf16, 10 fp16). ``torch.finfo(dtype).eps``."""
    return format_of(dtype).eps


def unit_roundoff(dtype: DType) -> float:
    """Exact: u = 2^-(p+1), the largest relative error of one round-to-nearest."""
    return format_of(dtype).unit_roundoff


def mantissa_bits(dtype: DType) -> int:
    """Exact: p, the stored mantissa bits (the hidden bit not counted)."""
    return format_of(dtype).mantissa_bits


def ulp(x, dtype: DType | None = None):
    """Exact: the spacing of the format's numbers at x, 2^(floor(log2|x|) - p) for normal x and
    the smallest subnormal for zero and subnormals (see ``bitkernels.formats.ulp``)."""
    return _ulp(x, dtype)


def update_is_lost(x: torch.Tensor, d: torch.Tensor | float) -> torch.Tensor:
    """Exact, per element: whether x (stored in its dtype) keeps all of its bits after receiving
    the update d the way the kernels and torch apply it: s = x + d in fp32, then one
    round-to-nearest-even into x's dtype. Like the ``lost`` counter, only finite nonzero d
    counts as an update (d = 0, inf or NaN gives False).

    Worked out from the rounding rule rather than by rounding: with r = s - x (exact in fp32
    whenever it matters, by Sterbenz's lemma), x stays iff |r| < gap / 2, or |r| = gap / 2 and
    x's last mantissa bit is even; gap is ulp(x) away from zero and ulp(x) / 2 towards zero from
    a normal power of two above the smallest normal. A zero x rounds back to the zero with d's
    sign, so it stays only when d has its sign. Non-finite x: inf + finite d stays inf
    (True); a NaN parameter gives False (it is counted as non-finite, not as lost).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    fmt = format_of(x.dtype, "x.dtype")
    d = torch.as_tensor(d, dtype=torch.float32, device=x.device)
    x32 = x.float()
    s = x32 + d  # the kernels' fp32 add
    moving = torch.isfinite(d) & (d != 0)
    if fmt.mantissa_bits == 23:
        return moving & (s == x32) & torch.isfinite(x32) | moving & torch.isinf(x32)
    r = (s - x32).double()
    bits = x.view(fmt.bits_dtype).to(torch.int32) & ((1 << fmt.width) - 1)
    mantissa = bits & ((1 << fmt.mantissa_bits) - 1)
    exponent_field = (bits >> fmt.mantissa_bits) & ((1 << fmt.exponent_bits) - 1)
    gap = _ulp(x).double()
    towards_zero = (r * x32.double()) < 0
    halved = towards_zero & (mantissa == 0) & (exponent_field > 1)
    gap = torch.where(halved, gap / 2, gap)
    even = (mantissa & 1) == 0
    stays = (r.abs() < gap / 2) | ((r.abs() == gap / 2) & even)
    # x = +-0 rounds back to a zero with the sign of d: a sign flip, not a lost update.
    stays = stays & ((x32 != 0) | (torch.signbit(x32) == torch.signbit(d)))
    return moving & ((stays & torch.isfinite(x32)) | torch.isinf(x32))


# ---- heuristics of the theory note ---------------------------------------------------------

def ratio_R(grad_norm, dtype: DType):
    """Heuristic (the note's bit-level change potential): R = ||g|| / eps, the gradient
    magnitude in units of the machine epsilon."""
    g, back = _numeric(grad_norm, "grad_norm")
    return back(g / machine_eps(dtype))


def bit_depth(grad_norm, dtype: DType):
    """Heuristic: n_b = floor(log2 R), the note's "effective bit depth" of the gradient signal
    (-inf for a zero gradient). The exact per-element counterpart is the depth histogram of
    BitStats."""
    g, back = _numeric(grad_norm, "grad_norm")
    return back(torch.floor(torch.log2(g / machine_eps(dtype))))


def activation_energy(i, grad_norm, dtype: DType):
    """Heuristic: E_i = log2(eps * 2^i / ||g||), the note's activation energy (in bits) of
    flipping bit i (counted from the least significant): negative when the gradient clears the
    bar eps * 2^i."""
    bit, _ = _numeric(i, "i")
    g, back = _numeric(grad_norm, "grad_norm")
    return back(torch.log2(machine_eps(dtype) * torch.exp2(bit) / g))


def regime(R, dtype: DType):
    """Heuristic: the note's precision regime of R = ||g|| / eps: "underflow" (R < 1),
    "effective" (1 <= R < 2^p) or "saturation" (R >= 2^p). A string for a number, a numpy
    array of strings otherwise. (The depth histogram's regimes are the exact per-element
    version: underflow n <= -1, effective 0 <= n < p, saturation n >= p.)"""
    r, _ = _numeric(R, "R")
    p = mantissa_bits(dtype)
    index = (r >= 1).long() + (r >= 2.0 ** p).long()
    names = np.array(REGIMES)[index.cpu().numpy()]
    return str(names) if r.dim() == 0 else names


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2.0))


def _flip_probability(g: torch.Tensor, s: torch.Tensor, dtype: DType) -> torch.Tensor:
    if bool((s < 0).any()):
        raise ValueError("sigma must be >= 0")
    p = mantissa_bits(dtype)
    bars = machine_eps(dtype) * torch.exp2(torch.arange(p + 1, dtype=torch.float64,
                                                        device=g.device))
    excess = g.unsqueeze(-1) - bars
    s = s.to(g.device).unsqueeze(-1)
    step = torch.where(excess > 0, 1.0, torch.where(excess < 0, 0.0, 0.5)).double()
    z = excess / torch.where(s > 0, s, torch.ones_like(s))
    return torch.where(s > 0, _normal_cdf(z), step)


def flip_probability(grad_norm, sigma, dtype: DType):
    """Heuristic: P(flip_i) = Phi((||g|| - eps * 2^i) / sigma) for bits i = 0 .. p, Phi the
    standard normal CDF and sigma the gradient noise's standard deviation, as the note writes
    it. The last axis of the result runs over i (length p + 1; a float grad_norm gives a numpy
    array). sigma = 0 gives the step function (1 above the bar, 0 below, 1/2 on it)."""
    g, back = _numeric(grad_norm, "grad_norm")
    s, _ = _numeric(sigma, "sigma")
    probs = _flip_probability(g, s, dtype)
    return probs.cpu().numpy() if g.dim() == 0 and not isinstance(grad_norm, torch.Tensor) \
        else back(probs)


def information_per_update(grad_norm, sigma, dtype: DType):
    """Heuristic: I_update = sum over i = 0 .. p of P(flip_i), the note's "bits modified per
    update"."""
    g, back = _numeric(grad_norm, "grad_norm")
    s, _ = _numeric(sigma, "sigma")
    return back(_flip_probability(g, s, dtype).sum(-1))


def min_precision(g):
    """Heuristic: p_min = ceil(log2(max|g| / min|g|)) over the nonzero |g|. Despite the note's
    name this is a dynamic-range requirement, i.e. on the exponent (how many binades the
    gradient spans), not on the mantissa. Returns an int; ValueError when no element is
    nonzero and finite."""
    t, _ = _numeric(g, "g")
    a = t.abs().flatten()
    a = a[(a != 0) & torch.isfinite(a)]
    if a.numel() == 0:
        raise ValueError("g has no nonzero finite element")
    return int(math.ceil(math.log2(float(a.max()) / float(a.min()))))


def dynamic_scale(grad_norm, dtype: DType):
    """Heuristic: s = 2^floor(log2(||g|| / eps)), the note's dynamic (loss) scale."""
    g, back = _numeric(grad_norm, "grad_norm")
    return back(torch.exp2(torch.floor(torch.log2(g / machine_eps(dtype)))))


def channel_capacity(grad_norm, dtype: DType):
    """Heuristic: C = log2(1 + ||g||^2 / eps^2), the note's channel capacity per update (the
    Shannon formula with eps as the noise amplitude)."""
    g, back = _numeric(grad_norm, "grad_norm")
    return back(torch.log2(1.0 + (g / machine_eps(dtype)) ** 2))


def effective_update(grad_norm, dtype: DType):
    """Heuristic: Delta_eff = max(||g||, eps), the note's bound on the realized update."""
    g, back = _numeric(grad_norm, "grad_norm")
    return back(torch.clamp_min(g, machine_eps(dtype)))


def compare(stats, grad_norm: float, sigma: float) -> list[dict[str, Any]]:
    """The note's predicted per-bit flip probabilities beside the measured ones of ``stats``
    (a BitStats): one row per bit position k = 0 .. width-1 with its label, the measured
    flips / numel and the prediction Phi((||g|| - eps * 2^k) / sigma) for k = 0 .. p (NaN
    where the note predicts nothing). Where they disagree, the heuristic does not hold: it
    ignores each element's own magnitude (its ulp), which the measured counts reflect."""
    fmt = stats.format
    measured = stats.flip_prob().double().cpu().tolist()
    predicted = flip_probability(float(grad_norm), float(sigma), fmt)
    rows = []
    for k, label in enumerate(fmt.bit_labels):
        rows.append({
            "bit": k,
            "label": label,
            "measured": measured[k],
            "predicted": float(predicted[k]) if k < len(predicted) else float("nan"),
        })
    return rows
