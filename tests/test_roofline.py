"""The roofline runner: DESIGN.md's byte counts, the transformer parameter list, the derived
columns, and `python -m bitkernels bench` end to end at tiny sizes."""

from __future__ import annotations

import json

import pytest
import torch

from bitkernels import roofline
from test_cli import run_cli


@pytest.mark.parametrize("optimizer,param_bytes,expected", [
    ("adamw", 4, 28), ("sgd_momentum", 4, 20), ("lion", 4, 20),
    ("adamw", 2, 22), ("sgd_momentum", 2, 14), ("lion", 2, 14)])
def test_step_bytes_are_the_design_roofline(optimizer, param_bytes, expected):
    assert roofline.step_bytes(optimizer, 1, param_bytes) == expected
    assert roofline.step_bytes(optimizer, 1000, param_bytes) == 1000 * expected


def test_torch_moves_fewer_bytes_with_16_bit_states():
    assert roofline.step_bytes("adamw", 1, 2, state_bytes=2) == 14


def test_transformer_shapes_default_to_gpt2_small():
    shapes = roofline.transformer_shapes()
    assert len(shapes) == 148
    numel = sum(torch.Size(s).numel() for s in shapes)
    assert 124_000_000 < numel < 124_500_000  # GPT-2 small: 124.4M


def test_sizes_parse_and_print():
    assert roofline.parse_size("4K") == 4096 and roofline.parse_size("16m") == 1 << 24
    assert roofline.size_label(1 << 26) == "64M" and roofline.size_label(1000) == "1000"


def test_rows_derive_bandwidth_and_ratios():
    def fixed(name, seconds, nbytes=1000):
        return roofline.Candidate(name, lambda: None, bytes=nbytes, times=[seconds] * 5)

    rows = {r.name: r for r in roofline._rows("case", [
        fixed("ours[cpu], statistics", 2e-6), fixed("ours[cpu], no statistics", 1e-6),
        fixed("torch fused", 4e-6), fixed("copy (same bytes)", 1e-6)])}
    stats = rows["ours[cpu], statistics"]
    assert stats.gbps == pytest.approx(0.5) and stats.copy_fraction == pytest.approx(0.5)
    assert stats.vs_torch_fused == pytest.approx(0.5)
    assert stats.stats_on_off == pytest.approx(2.0)
    assert rows["ours[cpu], no statistics"].stats_on_off is None
    assert rows["copy (same bytes)"].vs_torch_fused is None


def test_bench_cli_prints_and_writes_every_case(tmp_path):
    path, summary = tmp_path / "bench.json", tmp_path / "bench.md"
    out = run_cli("bench", "--sizes", "4K", "--dtypes", "float32,bfloat16", "--rounds", "2",
                  "--model-width", "8", "--json", str(path), "--markdown", str(summary))
    for needle in ("adamw fp32 4K", "sgd_momentum bf16 4K", "lion fp32 4K",
                   "bitflip_stats fp32 4K", "12-layer transformer", "torch fused",
                   "do-it-yourself", "copy (same bytes)", "stats on/off"):
        assert needle in out, needle
    report = json.loads(path.read_text())
    assert report["environment"]["torch"] == torch.__version__
    names = {(r["case"], r["name"]) for r in report["rows"]}
    assert ("adamw fp32 4K", "ours[cpu], statistics") in names
    assert all(r["median_ms"] > 0 for r in report["rows"])
    lines = summary.read_text().splitlines()
    assert lines[0].startswith("| case |") and any(ln.startswith("| adamw bf16 4K |")
                                                    for ln in lines)
