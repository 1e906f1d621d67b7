"""bitflip_stats on every backend against the independent numpy oracle: counters exact."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import bitkernels as bk
from bitkernels.formats import format_of
from cases import BACKEND_CASES, DTYPES
from oracle import assert_matches, expected

SIZES = [0, 1, 7, 1000, 4099, 2**17 + 3]

pytestmark = pytest.mark.parametrize("backend,device", BACKEND_CASES)


def random_pair(n, dtype, device, seed, with_update):
    """old ~ N(0, 1); new = old + d rounded to dtype, with d spanning lost to saturating sizes."""
    g = torch.Generator().manual_seed(seed)
    old = torch.randn(n, generator=g).to(dtype)
    scale = torch.pow(10.0, torch.randint(-12, 1, (n,), generator=g).float())
    d = torch.randn(n, generator=g) * scale
    d[torch.rand(n, generator=g) < 0.05] = 0.0
    new = (old.float() + d).to(dtype)
    return old.to(device), new.to(device), (d.to(device) if with_update else None)


def check(backend, old, new, update=None):
    stats = bk.bitflip_stats(old, new, update=update, backend=backend)
    assert stats.device == old.device
    assert_matches(stats, expected(old, new, update))
    return stats


@pytest.mark.parametrize("with_update", [False, True], ids=["bits", "update"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", SIZES)
def test_random_sizes(backend, device, n, dtype, with_update):
    check(backend, *random_pair(n, dtype, device, seed=n, with_update=with_update))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_bit_pattern_vs_shuffled(backend, device, dtype):
    """16-bit formats: all 65536 patterns (every special value) against a shuffle of them, with
    updates drawn from specials too. fp32: the same with random 32-bit patterns."""
    fmt = format_of(dtype)
    g = torch.Generator().manual_seed(7)
    if fmt.width == 16:
        old = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype)
    else:
        old = torch.randint(-(2**31), 2**31, (65536,), generator=g, dtype=torch.int64)
        old = old.to(torch.int32).view(dtype)
    new = old[torch.randperm(old.numel(), generator=g)]
    specials = torch.tensor([0.0, -0.0, 1e-45, -1e-45, 1.2e-38, 2.0**-24, 1.0, -3.5, 1e30,
                             float("inf"), float("-inf"), float("nan")])
    update = torch.where(torch.rand(old.numel(), generator=g) < 0.5,
                         specials[torch.randint(0, len(specials), (old.numel(),), generator=g)],
                         torch.randn(old.numel(), generator=g))
    check(backend, old.to(device), new.to(device))
    check(backend, old.to(device), new.to(device), update.to(device))


def special_values(dtype):
    fmt = format_of(dtype)
    vals = [0.0, -0.0, fmt.min_subnormal, -fmt.min_subnormal, fmt.min_normal - fmt.min_subnormal,
            fmt.min_normal, 2 * fmt.min_normal, 0.5, 1.0, -1.0, 2.0, 1.0 + fmt.eps,
            1.0 - fmt.eps / 2, fmt.max, -fmt.max, float("inf"), float("-inf"), float("nan")]
    t = torch.tensor(vals, dtype=torch.float64).to(dtype)
    # NaN payloads: quiet and signalling patterns, both signs.
    width, p = fmt.width, fmt.mantissa_bits
    exp_ones = ((1 << fmt.exponent_bits) - 1) << p
    payloads = [exp_ones | 1, exp_ones | (1 << (p - 1)) | 5, exp_ones | ((1 << p) - 1)]
    payloads += [b | (1 << (width - 1)) for b in payloads]
    signed = [b - (1 << width) if b >= 1 << (width - 1) else b for b in payloads]
    nans = torch.tensor(signed, dtype=torch.int64).to(fmt.bits_dtype).view(dtype)
    return torch.cat([t, nans])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_special_value_pairs(backend, device, dtype):
    vals = special_values(dtype)
    old = vals.repeat_interleave(len(vals))
    new = vals.repeat(len(vals))
    update = (new.float() - old.float()).nan_to_num(nan=float("nan"))
    update[::7] = 0.0
    check(backend, old.to(device), new.to(device))
    check(backend, old.to(device), new.to(device), update.to(device))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_strided_inputs(backend, device, dtype):
    old, new, d = random_pair(6 * 701, dtype, device, seed=3, with_update=True)
    old2, new2, d2 = old.view(6, 701), new.view(6, 701), d.view(6, 701)
    views = [
        (old[::3], new[::3], d[::3]),  # step slice
        (old2.t(), new2.t(), d2.t()),  # transpose, same strides: read without a copy
        (old2.t(), new2.t().contiguous(), d2),  # mixed layouts of the same logical tensor
        (old2[:, 1:], new2[:, 1:], d2[:, 1:]),  # offset rows
        (old[:1].expand(50), new[:50], d[:50]),  # broadcast (stride 0)
    ]
    for o, nw, u in views:
        u = u if u.shape == o.shape else u.t()
        stats = bk.bitflip_stats(o, nw, update=u, backend=backend)
        assert_matches(stats, expected(o.contiguous(), nw.contiguous(), u.contiguous()))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_flush_denormal_mode_counts_the_same(backend, device, dtype):
    """Under torch.set_flush_denormal(True) (denormals-are-zero) the vector paths that read
    exponents through float arithmetic (AVX-512 getexp, the AVX2 groups' d * 2^40) hand their
    work to the loops that classify on bits, which count subnormal updates as the oracle does
    (their squares, below 1e-76, are lost to the sums either way)."""
    if backend != "cpu":
        pytest.skip("the flush-denormal mode is the CPU's")
    old, new, d = random_pair(4099, dtype, device, seed=5, with_update=True)
    d[::5] = torch.tensor([1e-40, -3e-42])[torch.arange(0, 4099, 5) % 2]  # fp32 subnormals
    want = expected(old, new, d)
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-denormal mode")
    try:
        stats = bk.bitflip_stats(old, new, update=d, backend=backend)
    finally:
        torch.set_flush_denormal(False)
    assert_matches(stats, want)


def test_accumulates_into_out(backend, device):
    old, new, d = random_pair(5000, torch.bfloat16, device, seed=11, with_update=True)
    stats = bk.BitStats(torch.bfloat16, device)
    for _ in range(3):
        assert bk.bitflip_stats(old, new, update=d, backend=backend, out=stats) is stats
    once = expected(old, new, d)
    thrice = {k: ([3 * x for x in v] if isinstance(v, list) else 3 * v) for k, v in once.items()}
    thrice["steps"] = 3
    assert_matches(stats, thrice)


@given(data=st.data())
def test_property_random_bits(backend, device, data):
    """Raw bit patterns (any special value can appear) with updates from all float classes."""
    dtype = data.draw(st.sampled_from(DTYPES))
    fmt = format_of(dtype)
    n = data.draw(st.integers(0, 600))  # up to two groups of the AVX-512 loops and a tail
    lo, hi = -(2 ** (fmt.width - 1)), 2 ** (fmt.width - 1) - 1
    bits = st.lists(st.integers(lo, hi), min_size=n, max_size=n)
    old = torch.tensor(data.draw(bits), dtype=torch.int64).to(fmt.bits_dtype).view(dtype)
    # new: mostly old with a few bits toggled, sometimes unrelated
    toggles = torch.tensor(data.draw(bits), dtype=torch.int64).to(fmt.bits_dtype)
    keep = torch.tensor(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                        dtype=torch.bool)
    new = torch.where(keep, old.view(fmt.bits_dtype), old.view(fmt.bits_dtype) ^ toggles)
    new = new.view(dtype)
    floats = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
    update = torch.tensor(data.draw(st.lists(floats, min_size=n, max_size=n)),
                          dtype=torch.float32)
    with_update = data.draw(st.booleans())
    check(backend, old.to(device), new.to(device), update.to(device) if with_update else None)


@pytest.mark.slow
def test_more_than_2_31_elements(backend, device):
    """64-bit indexing: differences placed beyond element 2^31 are counted. (The update path
    would need another 8.6 GB for an fp32 update; it shares the 64-bit loop indices.)"""
    if backend != "cpu":
        pytest.skip("memory/time: 2^31 elements are checked on the cpu backend")
    n = 2**31 + 5
    try:
        old = torch.zeros(n, dtype=torch.bfloat16)
        new = torch.zeros(n, dtype=torch.bfloat16)
    except RuntimeError as e:  # out of memory
        pytest.skip(f"cannot allocate 2 x {n} bf16: {e}")
    idx = torch.tensor([0, 2**31 - 1, 2**31, 2**31 + 3, n - 1])
    new[idx] = torch.tensor([1.0, -2.0, 3.0, float("inf"), 0.5], dtype=torch.bfloat16)
    stats = bk.bitflip_stats(old, new, backend=backend)
    assert_matches(stats, {**expected(old[idx], new[idx]), "numel": n})
