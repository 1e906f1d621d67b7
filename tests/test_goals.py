"""`python -m bitkernels bench --goals`: the verdicts' arithmetic, and both plans end to end at
tiny sizes (the GPU plan through the cpu backend, the only one that runs here)."""

from __future__ import annotations

import json

import torch

from bitkernels import goals
from test_cli import run_cli


def test_a_verdict_holds_on_the_right_side_of_its_limit():
    assert goals.Verdict("x", 1.10, True, 1.10).met is True
    assert goals.Verdict("x", 1.10, True, 1.11).met is False
    assert goals.Verdict("x", 0.70, False, 0.70).met is True
    assert goals.Verdict("x", 0.70, False, 0.69).met is False
    assert goals.Verdict("x", 0.70, False, None).met is None


def test_a_missed_goal_says_by_how_much():
    assert goals._verdict(goals.Verdict("x", 1.10, True, 1.375)) == "missed by 25%"
    assert goals._verdict(goals.Verdict("x", 100.0, False, 50.0)) == "missed by 50%"
    assert goals._verdict(goals.Verdict("x", 1.05, True, 1.0)) == "met"
    assert goals._limit(goals.Verdict("x", 1.1, True, 1.0)) == "<= 1.10"
    assert goals._limit(goals.Verdict("x", 100.0, False, 1.0)) == ">= 100"


def test_the_cpu_goals_are_each_measured():
    seen = []
    verdicts = goals.run(torch.device("cpu"), rounds=1, size=4096, report=seen.append)
    assert [r[0].case for r in seen] == ["adamw fp32 4K", "bitflip_stats fp32 4K",
                                         "adamw bf16 4K", "bitflip_stats bf16 4K"]
    assert len(verdicts) == 8
    assert all(v.measured is not None and v.measured > 0 for v in verdicts)
    assert verdicts[0].goal == "AdamW fp32 4K, statistics / torch fused AdamW"
    assert verdicts[0].measured == seen[0][0].vs_torch_fused


def test_the_gpu_goals_are_each_measured_per_backend():
    # The GPU plan's cases and verdicts, run through the cpu backend at tiny sizes.
    model = {"width": 8, "vocab": 64, "context": 16}
    verdicts = goals._gpu(torch.device("cpu"), 1, 4096, model, ["cpu"], lambda rows: None)
    assert [v.goal for v in verdicts] == [
        "cpu AdamW fp32 4K, statistics, fraction of the copy bandwidth",
        "cpu AdamW fp32 4K, statistics / torch fused AdamW",
        "cpu AdamW fp32 4K, statistics on / off",
        "cpu AdamW fp32, 12-layer transformer (148 tensors, 0.0M), statistics / torch fused AdamW"]
    assert all(v.measured is not None for v in verdicts)


def test_bench_goals_cli_writes_the_verdicts(tmp_path):
    path, summary = tmp_path / "goals.json", tmp_path / "goals.md"
    out = run_cli("bench", "--goals", "--sizes", "4K", "--rounds", "1", "--json", str(path),
                  "--markdown", str(summary))
    assert "goals (issue 5)" in out and "bitflip_stats bf16 4K" in out
    report = json.loads(path.read_text())
    assert len(report["goals"]) == 8 and {"goal", "limit", "measured", "met"} <= set(
        report["goals"][0])
    assert {r["case"] for r in report["rows"]} >= {"adamw fp32 4K", "bitflip_stats bf16 4K"}
    assert summary.read_text().startswith("| goal | limit | measured | |")
