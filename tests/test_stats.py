"""BitStats: layout, views, merge, reset, dict round trip, derived values."""

from __future__ import annotations

import json

import pytest
import torch

import bitkernels as bk
from bitkernels.stats import BitStats, Layout


def filled(dtype=torch.bfloat16, seed=0):
    g = torch.Generator().manual_seed(seed)
    old = torch.randn(4096, generator=g).to(dtype)
    d = torch.randn(4096, generator=g) * 1e-2
    return bk.bitflip_stats(old, (old.float() + d).to(dtype), update=d, backend="reference")


def test_layout_matches_the_compiled_header():
    bk.backends._ext.load_cpu()
    assert list(torch.ops.bitkernels.stats_layout()) == list(Layout.AS_LIST)


def test_fresh_stats_are_zero_views():
    s = bk.BitStats(torch.float16)
    assert s.flips.shape == (16,) and s.depth.shape == (64,)
    assert int(s.numel) == int(s.steps) == int(s.changed) == 0
    assert s.flip_prob().tolist() == [0.0] * 16 and float(s.changed_frac()) == 0.0
    s.counters[Layout.CHANGED] = 5  # views see the buffer
    assert int(s.changed) == 5
    assert s.bit_labels() == bk.formats.FP16.bit_labels
    assert s.depth_values()[0] == -40 and s.depth_values()[-1] == 23


def test_derived_values():
    s = filled()
    numel = int(s.numel)
    assert torch.allclose(s.flip_prob(), s.flips.double() / numel)
    assert int(s.popcount()) == int(s.flips.sum())
    assert float(s.changed_frac()) == int(s.changed) / numel


def test_merge_add_reset_clone():
    a, b = filled(seed=1), filled(seed=2)
    total = a + b
    assert torch.equal(total.counters, a.counters + b.counters)
    assert torch.equal(total.sums, a.sums + b.sums)
    c = a.clone()
    c += b
    assert c.equal(total) and not c.equal(a)
    c.reset_()
    assert int(c.counters.abs().sum()) == 0 and float(c.sums.abs().sum()) == 0
    assert int(a.steps) == 1  # clone did not share buffers


def test_merge_rejects_other_formats():
    with pytest.raises(TypeError, match="bf16 statistics into fp32"):
        bk.BitStats(torch.float32).merge_(bk.BitStats(torch.bfloat16))
    with pytest.raises(TypeError, match="can only merge a BitStats"):
        bk.BitStats().merge_(3)


def test_dict_round_trip_through_json():
    s = filled(torch.float16)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["dtype"] == "float16" and len(d["flips"]) == 16 and len(d["depth"]) == 64
    back = bk.BitStats.from_dict(d)
    assert back.equal(s)


def test_cpu_copy_and_repr():
    s = filled()
    c = s.cpu()
    assert c.equal(s) and c.counters.data_ptr() != s.counters.data_ptr()
    assert "bf16" in repr(s) and "steps=1" in repr(s)


def test_constructor_validates_buffers():
    with pytest.raises(ValueError, match="counters must be int64"):
        bk.BitStats(counters=torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="sums must be float64"):
        bk.BitStats(sums=torch.zeros(4))
    with pytest.raises(TypeError, match="dtype must be one of"):
        bk.BitStats(torch.int32)


def known_stats() -> BitStats:
    """bf16 statistics with hand-set counters: 10 element-steps over 2 steps."""
    depth = [0] * Layout.DEPTH_BINS
    depth[-2 - Layout.DEPTH_MIN] = 2  # n = -2: underflow
    depth[0 - Layout.DEPTH_MIN] = 3   # n = 0: effective
    depth[6 - Layout.DEPTH_MIN] = 1   # n = 6: effective (p = 7)
    depth[7 - Layout.DEPTH_MIN] = 2   # n = 7: saturation
    flips = [0] * 16
    flips[0], flips[3], flips[15] = 4, 2, 1
    return BitStats.from_dict({
        "dtype": "bfloat16", "flips": flips, "changed": 5, "lost": 2, "zero": 1,
        "nonfinite": 1, "numel": 10, "steps": 2, "depth": depth,
        "sum_d2": 4.0, "sum_g2": 1.0, "sum_p2": 100.0, "sum_r2": 1.0})


def test_derived_views_by_hand():
    s = known_stats()
    assert int(s.moving()) == 8
    assert float(s.lost_frac()) == 2 / 8
    assert float(s.zero_frac()) == 0.1 and float(s.nonfinite_frac()) == 0.1
    assert float(s.flips_per_element()) == 7 / 10
    assert s.regime_fractions() == {"underflow": 2 / 8, "effective": 4 / 8, "saturation": 2 / 8}
    energies, probs = s.activation_energy()
    assert energies[0] == 40 and energies[-1] == -23
    assert float(probs[energies == 2]) == 2 / 8 and float(probs.sum()) == 1.0
    assert s.rms_ratios() == {"intended": 0.2, "realized": 0.1, "realized/intended": 0.5}


def test_derived_views_of_empty_stats_do_not_divide_by_zero():
    s = BitStats(torch.float32)
    assert float(s.lost_frac()) == 0.0 and float(s.flips_per_element()) == 0.0
    assert s.regime_fractions() == {"underflow": 0.0, "effective": 0.0, "saturation": 0.0}
    assert all(v != v for v in s.rms_ratios().values())  # NaN: nothing to compare


def test_summary_table_rows():
    from rich.console import Console

    a, b = known_stats(), known_stats()
    fp32 = BitStats(torch.float32)
    table = bk.stats.summary({"w": a, "b": b, "head": fp32})
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    for name in ("w", "b", "head", "all bf16"):
        assert name in text
    assert "all fp32" not in text  # a single fp32 tensor is its own total
    assert "25.00%" in text  # lost fraction 2 / 8
    assert a.summary("w").row_count == 1
