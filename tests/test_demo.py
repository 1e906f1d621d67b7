"""The demo (`python -m bitkernels demo`), its report re-rendered from stats.json, and the
TensorBoard writer."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import bitkernels as bk
from bitkernels import cli, demo, report
from bitkernels.integrations.tensorboard import log_bit_stats
from test_cli import run_cli

FILES = ["report.md", "stats.json", "summary.csv", *report.FIGURES.values()]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A tiny demo run: two configurations, 6 steps logged every 2, on a small text file."""
    out = tmp_path_factory.mktemp("demo")
    text = out / "text.txt"
    text.write_text("def f(x):\n    return x * 2  # twice\n" * 200)
    stdout = run_cli("demo", "--steps", "6", "--model", "tiny", "--batch", "4", "--log-every",
                     "2", "--configs", "fp32,bf16 nearest", "--text", str(text), "--out",
                     str(out / "report"), "--tensorboard", str(out / "tb"))
    assert "Wrote" in stdout
    return out


def test_demo_writes_the_report_figures_stats_and_csv(demo_dir):
    out = demo_dir / "report"
    for name in FILES:
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "stats.json").read_text())
    assert [r["name"] for r in data["runs"]] == ["fp32", "bf16 nearest"]
    model = demo.CharTransformer(data["config"]["vocab"], *demo.MODELS["tiny"])
    names = [n for n, _ in model.named_parameters()]
    for run in data["runs"]:
        assert len(run["losses"]) == 6
        assert [e["step"] for e in run["logged"]] == [2, 4, 6]
        for entry in run["logged"]:
            assert list(entry["tensors"]) == names  # every tensor at every logged step
            for name, p in model.named_parameters():
                stats = entry["tensors"][name]
                assert stats["dtype"] == run["dtype"]
                assert stats["steps"] == 2 and stats["numel"] == 2 * p.numel()
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("run,step,loss,lost_frac") and len(rows) == 1 + 2 * 3
    text = (out / "report.md").read_text()
    assert "| fp32 |" in text and "| bf16 nearest |" in text
    assert all(f"]({png})" in text for png in report.FIGURES.values())


def test_report_renders_again_from_stats_json(demo_dir, tmp_path):
    shutil.copy(demo_dir / "report" / "stats.json", tmp_path / "stats.json")
    assert cli.main(["report", str(tmp_path)]) == 0
    for name in FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    assert ((tmp_path / "report.md").read_text()
            == (demo_dir / "report" / "report.md").read_text())
    assert ((tmp_path / "summary.csv").read_text()
            == (demo_dir / "report" / "summary.csv").read_text())


def test_report_without_stats_json_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m bitkernels demo"):
        report.render(tmp_path)


def test_demo_tensorboard_events_hold_the_losses(demo_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(demo_dir / "tb" / "bf16_nearest"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == list(range(1, 7))
    assert any(tag.endswith("/lost_frac") for tag in acc.Tags()["scalars"])


def test_log_bit_stats_writes_scalars_and_the_depth_histogram(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    old = torch.randn(1000).bfloat16()
    update = torch.randn(1000) * 1e-4
    stats = bk.bitflip_stats(old, (old.float() + update).bfloat16(), update=update)
    writer = SummaryWriter(str(tmp_path))
    log_bit_stats(writer, {"w": stats}, step=7)
    log_bit_stats(writer, stats, step=8, prefix="all")
    writer.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    lost = acc.Scalars("bits/w/lost_frac")
    assert [e.step for e in lost] == [7]
    assert lost[0].value == pytest.approx(float(stats.lost_frac()))
    assert acc.Scalars("all/changed_frac")[0].value == pytest.approx(float(stats.changed_frac()))
    assert "bits/w/regime/underflow" in acc.Tags()["scalars"]
    histogram = acc.Histograms("bits/w/update_depth")[0].histogram_value
    assert histogram.num == int(stats.moving())


def test_default_text_ships_with_python():
    text, source = demo.default_text()
    assert len(text) > 100_000 and source
    data = demo.CharData(text)
    x, y = data.batch(3, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (3, 16) and torch.equal(x[:, 1:], y[:, :-1])
