"""bitkernels.theory: exact float facts against torch/ml_dtypes and actual rounding, the note's
heuristics against values worked out by hand."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import torch

import bitkernels as bk
from bitkernels import theory
from cases import DTYPES

ML_DTYPES = {torch.float32: np.float32, torch.bfloat16: ml_dtypes.bfloat16,
             torch.float16: np.float16}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_exact_facts(dtype):
    info = ml_dtypes.finfo(ML_DTYPES[dtype])
    assert theory.machine_eps(dtype) == torch.finfo(dtype).eps == float(info.eps)
    assert theory.mantissa_bits(dtype) == info.nmant
    assert theory.unit_roundoff(dtype) == float(info.eps) / 2
    assert float(theory.ulp(torch.tensor(1.0, dtype=dtype))) == float(info.eps)


def test_heuristics_by_hand():
    bf16, fp32 = torch.bfloat16, torch.float32
    assert theory.ratio_R(1e-3, bf16) == pytest.approx(0.128)
    assert theory.bit_depth(1.0, fp32) == 23
    assert theory.bit_depth(0.0, fp32) == -math.inf
    assert theory.activation_energy(7, 1.0, bf16) == 0.0  # eps * 2^7 = 1
    assert theory.activation_energy(0, 2.0 ** -5, bf16) == -2.0
    assert theory.regime(1.0, bf16) == "effective"
    assert theory.regime(math.nextafter(1.0, 0.0), bf16) == "underflow"
    assert theory.regime(2.0 ** 7, bf16) == "saturation"
    assert theory.regime(2.0 ** 23 - 1, fp32) == "effective"
    assert theory.dynamic_scale(5 * 2.0 ** -7, bf16) == 4.0
    assert theory.channel_capacity(2.0 ** -7, bf16) == 1.0
    assert theory.effective_update(1e-9, bf16) == 2.0 ** -7
    assert theory.effective_update(0.5, bf16) == 0.5
    assert theory.min_precision(np.array([0.0, 1e-3, -4e-3])) == 2
    assert theory.min_precision(torch.tensor([3.0, -3.0])) == 0
    with pytest.raises(ValueError, match="no nonzero"):
        theory.min_precision([0.0, float("nan")])


def test_flip_probability():
    bf16 = torch.bfloat16
    eps = 2.0 ** -7
    # sigma = 0: a step at each bar eps * 2^i, 1/2 on it.
    probs = theory.flip_probability(eps * 2 ** 3.5, 0.0, bf16)
    assert probs.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert theory.flip_probability(eps * 4, 0.0, bf16)[2] == 0.5
    assert theory.information_per_update(eps * 2 ** 3.5, 0.0, bf16) == 4.0
    # Phi((g - bar) / sigma): one sigma above bar 0 is Phi(1).
    p = theory.flip_probability(eps + 0.01, 0.01, bf16)
    assert p[0] == pytest.approx(0.8413447460685429, abs=1e-12)
    with pytest.raises(ValueError, match="sigma"):
        theory.flip_probability(1.0, -1.0, bf16)
    batch = theory.flip_probability(torch.tensor([eps, 1.0]), 0.0, bf16)
    assert isinstance(batch, torch.Tensor) and batch.shape == (2, 8)


def test_kinds_in_kinds_out():
    bf16 = torch.bfloat16
    assert isinstance(theory.ratio_R(1e-3, bf16), float)
    assert isinstance(theory.ratio_R(np.array([1e-3]), bf16), np.ndarray)
    out = theory.ratio_R(torch.tensor([1e-3, 1.0]), bf16)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert isinstance(theory.regime(np.array([0.5, 2.0]), bf16), np.ndarray)
    with pytest.raises(TypeError, match="grad_norm"):
        theory.ratio_R("big", bf16)
    with pytest.raises(TypeError, match="dtype"):
        theory.machine_eps(torch.float64)


def boundary_cases(dtype, n=200_000, seed=0):
    """Parameters (random, powers of two, zeros, subnormals, the largest finite, inf) and
    updates at and around the rounding boundaries: multiples of a quarter ulp, half the gap
    below a power of two, one fp32 ulp either side of a tie, and random magnitudes."""
    g = torch.Generator().manual_seed(seed)
    fmt = bk.formats.format_of(dtype)
    x = torch.randn(n, generator=g) * 2.0 ** torch.randint(-20, 20, (n,), generator=g).float()
    k = torch.arange(n)
    x[k % 7 == 0] = 2.0 ** torch.randint(-30, 15, ((k % 7 == 0).sum(),), generator=g).float()
    x[k % 101 == 0] = 0.0
    x[k % 103 == 0] = fmt.min_subnormal * 3
    x[k % 107 == 0] = fmt.min_normal
    x[k % 109 == 0] = fmt.max
    x[k % 113 == 0] = float("inf")
    x = x * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    x = x.to(dtype)
    u = bk.formats.ulp(x).float()
    u = torch.where(torch.isfinite(u), u, torch.ones_like(u))
    quarters = torch.randint(-6, 7, (n,), generator=g).float() / 4
    d = u * quarters
    nudged = torch.randint(0, 3, (n,), generator=g)
    d = torch.where(nudged == 1, torch.nextafter(d, torch.tensor(math.inf)), d)
    d = torch.where(nudged == 2, torch.nextafter(d, torch.tensor(-math.inf)), d)
    random = torch.randn(n, generator=g) * u * 2.0 ** torch.randint(-4, 4, (n,), generator=g)
    d = torch.where(k % 5 == 0, random, d)
    return x, d


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_update_is_lost_matches_rounding(dtype):
    x, d = boundary_cases(dtype)
    kept = (x.float() + d).to(dtype).view(x.dtype).view(bk.formats.format_of(dtype).bits_dtype)
    actual = (kept == x.view(kept.dtype)) & torch.isfinite(d) & (d != 0) & ~torch.isnan(x.float())
    predicted = theory.update_is_lost(x, d)
    assert 0.05 < float(actual.float().mean()) < 0.95  # both outcomes well represented
    mismatch = (predicted != actual).nonzero().flatten()[:5]
    assert mismatch.numel() == 0, [(float(x[i]), float(d[i])) for i in mismatch]


def test_update_is_lost_special_updates():
    x = torch.tensor([1.0, 1.0, 1.0, float("inf"), float("nan")], dtype=torch.bfloat16)
    d = torch.tensor([0.0, float("nan"), 1e-9, 1e-3, 1e-9])
    assert theory.update_is_lost(x, d).tolist() == [False, False, True, True, False]


def test_compare_labels_every_bit():
    old = torch.randn(4096) * 0.02
    new = old - 1e-4 * torch.sign(torch.randn(4096))
    stats = bk.bitflip_stats(old.bfloat16(), new.bfloat16())
    rows = theory.compare(stats, grad_norm=1e-4, sigma=1e-5)
    assert [r["bit"] for r in rows] == list(range(16))
    assert [r["label"] for r in rows] == list(bk.formats.bit_labels(torch.bfloat16))
    assert all(math.isnan(r["predicted"]) for r in rows[8:])
    assert rows[0]["measured"] == pytest.approx(float(stats.flip_prob()[0]))
