"""The performance goals (issue 5) as a check: `python -m bitkernels bench --goals` times exactly
the cases they are stated on and prints each goal with its measured ratio and whether it holds.

CPU (16M elements, fp32 and bf16): AdamW with statistics <= 1.10x torch's fused AdamW without,
statistics on/off <= 1.05, `bitflip_stats` >= 0.70 of the same-run copy bandwidth and >= 100x
faster than the do-it-yourself torch ops. GPU (64M fp32, each GPU backend): AdamW with statistics
>= 0.85 of the copy bandwidth, <= 1.0x torch fused, on/off <= 1.03; GPT-2 small's parameter list
(the many-tensors case) <= 1.10x torch fused.

Ratios of medians measured in one run, candidates alternating round by round (roofline.py): on a
shared machine a single run is one sample of its noise, so run it more than once before reading
a verdict as the kernel's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch

from . import roofline
from .formats import format_of

CPU_SIZE = 1 << 24
GPU_SIZE = 1 << 26
GPT2_SMALL = {"width": 768, "vocab": 50257, "context": 1024}


@dataclass(frozen=True)
class Verdict:
    """One goal and what this run measured for it (None: its case had no such candidate)."""

    goal: str
    limit: float
    at_most: bool  # the goal holds when measured <= limit (else: >= limit)
    measured: float | None

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    def as_dict(self) -> dict:
        return {**asdict(self), "met": self.met}


def _by_name(rows: list[roofline.Row]) -> dict[str, roofline.Row]:
    return {r.name: r for r in rows}


def _column(row: roofline.Row | None, column: str) -> float | None:
    return None if row is None else getattr(row, column)


def _cpu(device, rounds, size, report) -> list[Verdict]:
    verdicts = []
    label = roofline.size_label(size)
    for dtype in (torch.float32, torch.bfloat16):
        fmt = format_of(dtype).name
        rows = roofline.step_case("adamw", dtype, size, device, rounds, ["cpu"])
        report(rows)
        on = _by_name(rows).get("ours[cpu], statistics")
        verdicts += [
            Verdict(f"AdamW {fmt} {label}, statistics / torch fused AdamW", 1.10, True,
                    _column(on, "vs_torch_fused")),
            Verdict(f"AdamW {fmt} {label}, statistics on / off", 1.05, True,
                    _column(on, "stats_on_off"))]
        rows = roofline.bitflip_case(dtype, size, device, rounds, ["cpu"])
        report(rows)
        named = _by_name(rows)
        ours, diy = named.get("bitflip_stats[cpu]"), named.get("do-it-yourself torch ops")
        verdicts += [
            Verdict(f"bitflip_stats {fmt} {label}, fraction of the copy bandwidth", 0.70, False,
                    _column(ours, "copy_fraction")),
            Verdict(f"bitflip_stats {fmt} {label}, times faster than do-it-yourself torch ops",
                    100.0, False, diy.median_ms / ours.median_ms if ours and diy else None)]
    return verdicts


def _gpu(device, rounds, size, model, backends, report) -> list[Verdict]:
    verdicts = []
    label = roofline.size_label(size)
    rows = roofline.step_case("adamw", torch.float32, size, device, rounds, backends)
    report(rows)
    named = _by_name(rows)
    for b in backends:
        on = named.get(f"ours[{b}], statistics")
        verdicts += [
            Verdict(f"{b} AdamW fp32 {label}, statistics, fraction of the copy bandwidth", 0.85,
                    False, _column(on, "copy_fraction")),
            Verdict(f"{b} AdamW fp32 {label}, statistics / torch fused AdamW", 1.0, True,
                    _column(on, "vs_torch_fused")),
            Verdict(f"{b} AdamW fp32 {label}, statistics on / off", 1.03, True,
                    _column(on, "stats_on_off"))]
    rows = roofline.model_case(torch.float32, device, rounds, backends, **model)
    report(rows)
    named = _by_name(rows)
    for b in backends:
        on = named.get(f"ours[{b}], statistics")
        verdicts.append(Verdict(f"{b} AdamW fp32, {rows[0].case.split(' ', 2)[2]}, statistics / "
                                f"torch fused AdamW", 1.10, True, _column(on, "vs_torch_fused")))
    return verdicts


def run(device: torch.device, rounds: int = 20, size: int | None = None,
        model_width: int | None = None, backends: tuple[str, ...] | None = None,
        report: Callable[[list[roofline.Row]], None] = lambda rows: None) -> list[Verdict]:
    """Times the goals' cases on device (report(rows) after each) and returns the verdicts.
    size and model_width replace the goals' own (16M on the CPU, 64M and GPT-2 small on a GPU)
    for a quick run; the verdicts then say what was measured, not the goals."""
    if device.type == "cpu":
        return _cpu(device, rounds, size or CPU_SIZE, report)
    names = [n for n in roofline.benchmark_backends(device, backends) if n != "cpu"]
    if not names:
        raise ValueError(f"no GPU backend runs on {device} (see `python -m bitkernels backends`)")
    model = {**GPT2_SMALL, "width": model_width or GPT2_SMALL["width"]}
    return _gpu(device, rounds, size or GPU_SIZE, model, names, report)


def _limit(v: Verdict) -> str:
    return f"{'<=' if v.at_most else '>='} {v.limit:.2f}".removesuffix(".00")


def _measured(v: Verdict) -> str:
    return "not measured" if v.measured is None else f"{v.measured:.2f}"


def _verdict(v: Verdict) -> str:
    if v.met is None:
        return ""
    if v.met:
        return "met"
    by = v.measured / v.limit - 1 if v.at_most else 1 - v.measured / v.limit
    return f"missed by {by:.0%}"


def table(verdicts: list[Verdict]):
    """A rich Table: goal, limit, measured, verdict."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="goals (issue 5)", title_justify="left")
    for col in ("goal", "limit", "measured", ""):
        t.add_column(col, justify="left" if col == "goal" else "right")
    for v in verdicts:
        t.add_row(escape(v.goal), _limit(v), _measured(v), _verdict(v))
    return t


def markdown(verdicts: list[Verdict]) -> str:
    lines = ["| goal | limit | measured | |", "|---|---|---|---|"]
    lines += [f"| {v.goal} | {_limit(v)} | {_measured(v)} | {_verdict(v)} |" for v in verdicts]
    return "\n".join(lines)
