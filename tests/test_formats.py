"""Format facts against torch.finfo and ml_dtypes; ulp against the gap to the next value."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import torch

from bitkernels import formats
from bitkernels.formats import BF16, FP16, FP32, format_of, ulp
from cases import DTYPES

ML_DTYPES = {torch.float32: np.float32, torch.bfloat16: ml_dtypes.bfloat16,
             torch.float16: np.float16}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_facts_match_finfo(dtype):
    fmt, fi, mi = format_of(dtype), torch.finfo(dtype), ml_dtypes.finfo(ML_DTYPES[dtype])
    assert fmt.width == fi.bits == mi.bits
    assert fmt.eps == fi.eps == float(mi.eps) == 2.0 ** -fmt.mantissa_bits
    assert fmt.unit_roundoff == fi.eps / 2
    assert fmt.min_normal == fi.smallest_normal == float(mi.smallest_normal)
    assert fmt.min_subnormal == float(mi.smallest_subnormal)
    assert fmt.max == fi.max == float(mi.max)
    assert fmt.exponent_bits == mi.nexp
    assert fmt.min_exponent == mi.minexp and fmt.max_exponent == mi.maxexp - 1
    # the smallest subnormal is the bit pattern 1
    one = torch.tensor([1], dtype=fmt.bits_dtype).view(dtype)
    assert float(one) == fmt.min_subnormal


def test_design_table():
    """The float-facts table of DESIGN.md."""
    assert (FP32.mantissa_bits, FP32.exponent_bits) == (23, 8)
    assert (BF16.mantissa_bits, BF16.exponent_bits) == (7, 8)
    assert (FP16.mantissa_bits, FP16.exponent_bits) == (10, 5)
    assert [f.min_subnormal for f in (FP32, BF16, FP16)] == [2.0**-149, 2.0**-133, 2.0**-24]
    assert [f.min_normal for f in (FP32, BF16, FP16)] == [2.0**-126, 2.0**-126, 2.0**-14]
    assert math.isclose(BF16.eps, 7.81e-3, rel_tol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bit_labels(dtype):
    fmt = format_of(dtype)
    labels = formats.bit_labels(dtype)
    assert len(labels) == fmt.width and len(fmt.bit_names) == fmt.width
    assert labels[0] == "mantissa" and labels[-1] == "sign"
    assert labels.count("mantissa") == fmt.mantissa_bits
    assert labels.count("exponent") == fmt.exponent_bits
    assert fmt.bit_names[0] == "M0" and fmt.bit_names[fmt.mantissa_bits] == "E0"


def all_finite_patterns(dtype):
    fmt = format_of(dtype)
    if fmt.width == 16:
        bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    else:
        g = torch.Generator().manual_seed(0)
        bits = torch.randint(-(2**31), 2**31, (1 << 20,), generator=g).to(torch.int32)
        edges = torch.tensor([0, 1, 2, 0x007FFFFF, 0x00800000, 0x3F800000, 0x3F7FFFFF,
                              0x7F7FFFFF], dtype=torch.int32)
        bits = torch.cat([bits, edges, edges | (-(2**31))])
    x = bits.view(dtype)
    return x[torch.isfinite(x)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_ulp_is_gap_to_next_magnitude(dtype):
    """ulp(x) = next(|x|) - |x| (next by incrementing the bits); at max, max - prev(max)."""
    fmt = format_of(dtype)
    x = all_finite_patterns(dtype)
    mag_bits = x.abs().view(fmt.bits_dtype).long()
    is_max = x.abs() == fmt.max
    neighbour = torch.where(is_max, mag_bits - 1, mag_bits + 1).to(fmt.bits_dtype).view(dtype)
    gap = (neighbour.double() - x.abs().double()).abs()
    got = ulp(x)
    assert got.dtype == dtype
    assert torch.equal(got.double(), gap)


def test_ulp_special_values_and_inputs():
    assert ulp(1.0) == 2.0**-23
    assert ulp(1.0, torch.bfloat16) == 2.0**-7
    assert ulp(0.0, torch.float16) == 2.0**-24
    assert ulp(2048.0, torch.float16) == 2.0
    assert math.isinf(ulp(float("inf"))) and math.isnan(ulp(float("nan")))
    arr = ulp(np.array([1.0, 3.0, 0.0]), torch.bfloat16)
    assert isinstance(arr, np.ndarray)
    assert arr.tolist() == [2.0**-7, 2.0**-6, 2.0**-133]
    t = ulp(torch.tensor([-1.0, 1e-45]))
    assert t.tolist() == [2.0**-23, 2.0**-149]


def test_unsupported_dtype_names_argument():
    with pytest.raises(TypeError, match="dtype must be one of"):
        format_of(torch.float64)
    with pytest.raises(TypeError, match="x must be a tensor"):
        ulp("1.0")
