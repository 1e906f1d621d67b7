"""The demo's report: stats.json (every counter of every tensor at every logged step), a CSV of
per-step summaries, PNG figures and report.md. `python -m bitkernels report DIR` renders all of
it again from DIR/stats.json, without training."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import torch

from . import theory
from .formats import format_of
from .stats import BitStats

FIGURES = {
    "loss": "loss.png",
    "lost": "lost_fraction.png",
    "heatmap": "flip_probability_heatmap.png",
    "depth": "update_depth.png",
    "regimes": "regimes.png",
    "theory": "theory_vs_measured.png",
}
COLORS = {"fp32": "#1f77b4", "bf16 nearest": "#d62728", "bf16 stochastic": "#2ca02c",
          "bf16 Kahan": "#9467bd"}


# ---- stats.json ---------------------------------------------------------------------------------
def save(out: Path, config: dict[str, Any], runs: list) -> Path:
    """Writes out/stats.json from the run logs (demo.RunLog)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "stats.json"
    data = {"version": 1, "config": config,
            "runs": [{"name": r.name, "dtype": r.dtype, "rounding": r.rounding,
                      "kahan": r.kahan, "seconds": r.seconds, "losses": r.losses,
                      "logged": r.logged} for r in runs]}
    path.write_text(json.dumps(data))
    return path


def load(out: Path) -> dict[str, Any]:
    path = Path(out) / "stats.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `python -m bitkernels demo --out "
                                f"{out}` first")
    return json.loads(path.read_text())


def merged(entry: dict[str, Any]) -> BitStats:
    """All tensors of one logged step as one BitStats."""
    total = None
    for data in entry["tensors"].values():
        stats = BitStats.from_dict(data)
        total = stats if total is None else total.merge_(stats)
    return total


def run_series(run: dict[str, Any]) -> dict[str, Any]:
    """Per logged step of one run: the merged statistics and the summaries the figures use."""
    steps, stats = [], []
    for entry in run["logged"]:
        steps.append(entry["step"])
        stats.append(merged(entry))
    whole = None
    for s in stats:
        whole = s.clone() if whole is None else whole.merge_(s)
    return {"steps": steps, "stats": stats, "whole": whole}


def summaries(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (run, logged step): what report.csv holds."""
    rows = []
    for run in data["runs"]:
        series = run_series(run)
        for entry, stats in zip(run["logged"], series["stats"]):
            regimes = stats.regime_fractions()
            ratios = stats.rms_ratios()
            rows.append({
                "run": run["name"], "step": entry["step"], "loss": entry["loss"],
                "lost_frac": float(stats.lost_frac()), "changed_frac": float(stats.changed_frac()),
                "flips_per_element": float(stats.flips_per_element()),
                "underflow": regimes["underflow"], "effective": regimes["effective"],
                "saturation": regimes["saturation"], "intended_rms_ratio": ratios["intended"],
                "realized_rms_ratio": ratios["realized"],
                "realized_over_intended": ratios["realized/intended"]})
    return rows


def write_csv(out: Path, rows: list[dict[str, Any]]) -> Path:
    path = out / "summary.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---- figures ------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3,
                         "font.size": 9})
    return plt


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _color(name: str) -> str:
    return COLORS.get(name, "#555555")


def figure_loss(data, series, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in data["runs"]:
        losses = torch.tensor(run["losses"])
        window = max(1, len(losses) // 30)
        smooth = torch.nn.functional.avg_pool1d(losses[None, None], window, 1).flatten()
        ax.plot(range(1, len(losses) + 1), losses, color=_color(run["name"]), alpha=0.2, lw=0.7)
        ax.plot(range(window, len(losses) + 1), smooth, color=_color(run["name"]),
                label=run["name"], lw=1.6)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy, nats per character)")
    ax.set_title("Loss per run (faint: every step; bold: moving average)")
    ax.legend()
    _save(plt, fig, path)


def _figure_per_run(data, series, path: Path, value, ylabel: str, title: str,
                    **style) -> None:
    """One line per run over the logged steps: value(stats) of each logged BitStats."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in data["runs"]:
        s = series[run["name"]]
        ax.plot(s["steps"], [value(x) for x in s["stats"]], color=_color(run["name"]),
                label=run["name"], lw=1.6, **style)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend()
    _save(plt, fig, path)


def figure_lost(data, series, path: Path) -> None:
    _figure_per_run(data, series, path, lambda x: 100 * float(x.lost_frac()),
                    "lost updates (% of nonzero intended updates)",
                    "Updates rounded away: the element's stored bits did not change",
                    marker=".", ms=3)


def figure_heatmap(data, series, path: Path) -> None:
    from matplotlib.colors import LogNorm

    plt = _plt()
    runs = data["runs"]
    cols = 2 if len(runs) > 1 else 1
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.6 * rows), squeeze=False)
    image = None
    for ax, run in zip(axes.flat, runs):
        s = series[run["name"]]
        fmt = format_of(getattr(torch, run["dtype"]))
        probs = torch.stack([x.flip_prob() for x in s["stats"]], dim=1).numpy()
        probs = probs.clip(min=1e-6)
        image = ax.imshow(probs, aspect="auto", origin="lower", cmap="viridis",
                          norm=LogNorm(vmin=1e-6, vmax=1.0),
                          extent=(s["steps"][0] - 0.5, s["steps"][-1] + 0.5, -0.5,
                                  fmt.width - 0.5))
        p = fmt.mantissa_bits
        for edge in (p - 0.5, fmt.width - 1.5):
            ax.axhline(edge, color="white", lw=1.2)
        for y, label in ((p / 2 - 0.5, "mantissa"), ((p + fmt.width - 1) / 2 - 0.5, "exponent"),
                         (fmt.width - 1, "sign")):
            ax.text(1.01, (y + 0.5) / fmt.width, label, transform=ax.transAxes, va="center",
                    fontsize=8)
        ax.set_title(f"{run['name']} ({fmt.width} bits)")
        ax.set_xlabel("step")
        ax.set_ylabel("bit position (0 = mantissa LSB)")
        ax.grid(False)
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    fig.suptitle("Per-bit flip probability per step (share of parameters whose bit k flipped)")
    fig.tight_layout(rect=(0, 0, 0.9, 0.95))
    cax = fig.add_axes((0.92, 0.15, 0.015, 0.7))
    fig.colorbar(image, cax=cax, label="flip probability (log scale)")
    fig.savefig(path)
    plt.close(fig)


def _window(stats: list[BitStats], first: bool) -> BitStats:
    part = max(1, len(stats) // 5)
    chosen = stats[:part] if first else stats[-part:]
    total = chosen[0].clone()
    for s in chosen[1:]:
        total.merge_(s)
    return total


def figure_depth(data, series, path: Path) -> None:
    plt = _plt()
    runs = data["runs"]
    cols = 2 if len(runs) > 1 else 1
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.4 * rows), squeeze=False)
    n = BitStats.depth_values().numpy()
    for ax, run in zip(axes.flat, runs):
        s = series[run["name"]]
        p = format_of(getattr(torch, run["dtype"])).mantissa_bits
        for first, style in ((True, dict(alpha=0.45, label="first fifth of the steps")),
                             (False, dict(alpha=0.75, label="last fifth"))):
            w = _window(s["stats"], first)
            frac = (w.depth.double() / max(float(w.depth.sum()), 1.0)).numpy()
            ax.bar(n, 100 * frac, width=1.0, color=_color(run["name"]) if not first else "#999",
                   **style)
        ax.axvspan(n[0] - 0.5, -0.5, color="#d62728", alpha=0.06)
        ax.axvspan(-0.5, p - 0.5, color="#2ca02c", alpha=0.06)
        ax.axvspan(p - 0.5, n[-1] + 0.5, color="#1f77b4", alpha=0.06)
        top = ax.get_ylim()[1]
        for x, label in ((-15, "underflow: below one ulp\n(n <= -2 is rounded away)"),
                         ((p - 1) / 2, "effective"), ((p + 24) / 2, "saturation")):
            ax.text(x, top * 0.92, label, fontsize=7, ha="center", va="top")
        ax.set_xlim(-30, 24)
        ax.set_title(run["name"])
        ax.set_xlabel("update depth n = floor(log2(|update| / ulp(weight)))")
        ax.set_ylabel("% of intended updates")
        ax.legend(fontsize=7, loc="center left")
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    fig.suptitle("How deep each update reaches into its weight, early and late in training")
    _save(plt, fig, path)


def figure_regimes(data, series, path: Path) -> None:
    _figure_per_run(data, series, path, lambda x: 100 * x.regime_fractions()["underflow"],
                    "% of intended updates below one ulp (n <= -1)",
                    "Underflow regime: updates smaller than their weight's last bit")


def theory_inputs(whole: BitStats, series_stats: list[BitStats]) -> tuple[float, float]:
    """The heuristic's ||g|| and sigma, read off a run: ||g|| = intended update RMS / weight RMS
    over the whole run, sigma = its standard deviation across the logged steps."""
    g = whole.rms_ratios()["intended"]
    per_step = torch.tensor([s.rms_ratios()["intended"] for s in series_stats],
                            dtype=torch.float64)
    per_step = per_step[torch.isfinite(per_step)]
    sigma = float(per_step.std()) if per_step.numel() > 1 else 0.0
    return g, sigma


def figure_theory(data, series, path: Path) -> None:
    plt = _plt()
    runs = data["runs"]
    cols = 2 if len(runs) > 1 else 1
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.4 * rows), squeeze=False)
    for ax, run in zip(axes.flat, runs):
        s = series[run["name"]]
        g, sigma = theory_inputs(s["whole"], s["stats"])
        rows_ = theory.compare(s["whole"], grad_norm=g, sigma=sigma)
        k = [r["bit"] for r in rows_]
        floor = 1e-6
        ax.bar(k, [r["measured"] for r in rows_], color=_color(run["name"]), alpha=0.7,
               label="measured flips / parameter / step")
        predicted = [r["predicted"] for r in rows_]
        shown = [max(x, floor) if math.isfinite(x) else float("nan") for x in predicted]
        ax.plot(k, shown, "k.--", ms=5, lw=0.8,
                label=f"note's heuristic, ||g|| = {g:.2g}, sigma = {sigma:.2g}")
        if all(not (x >= floor) for x in predicted):
            ax.text(0.98, 0.6, f"heuristic: below {floor:g} for every bit\n(||g|| < eps = "
                    f"{theory.machine_eps(getattr(torch, run['dtype'])):.2g})",
                    transform=ax.transAxes, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylim(floor * 0.7, 1.5)
        ax.set_title(run["name"])
        ax.set_xlabel("bit position (0 = mantissa LSB)")
        ax.set_ylabel("flip probability")
        ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    fig.suptitle("Measured per-bit flip probability beside the theory note's prediction "
                 "Phi((||g|| - eps 2^k) / sigma) (a heuristic)")
    _save(plt, fig, path)


# ---- report.md ----------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def run_table(data, series) -> tuple[str, dict[str, dict[str, float]]]:
    lines = ["| run | final loss (last 10% of steps) | lost updates | stored bits changed | "
             "bits flipped per parameter per step | realized / intended update RMS | seconds |",
             "|---|---|---|---|---|---|---|"]
    figures: dict[str, dict[str, float]] = {}
    for run in data["runs"]:
        whole = series[run["name"]]["whole"]
        tail = run["losses"][-max(1, len(run["losses"]) // 10):]
        depth = whole.depth.double()
        n = BitStats.depth_values()
        row = {"loss": sum(tail) / len(tail), "lost": float(whole.lost_frac()),
               "changed": float(whole.changed_frac()), "flips": float(whole.flips_per_element()),
               "ratio": whole.rms_ratios()["realized/intended"], "seconds": run["seconds"],
               "near_edge": float(depth[(n >= -2) & (n <= 1)].sum() / depth.sum().clamp_min(1))}
        figures[run["name"]] = row
        lines.append(f"| {run['name']} | {row['loss']:.3f} | {_pct(row['lost'])} | "
                     f"{_pct(row['changed'])} | {row['flips']:.2f} | {row['ratio']:.3f} | "
                     f"{row['seconds']:.1f} |")
    return "\n".join(lines), figures


def reading(figures: dict[str, dict[str, float]]) -> list[str]:
    """A few sentences on what the numbers say, written from the numbers."""
    out = []
    fp32, nearest = figures.get("fp32"), figures.get("bf16 nearest")
    if fp32 and nearest:
        out.append(
            f"Stored in bf16 with round-to-nearest (what torch does), {_pct(nearest['lost'])} of "
            f"the intended updates changed no bit of their weight, against {_pct(fp32['lost'])} "
            f"in fp32: a bf16 weight keeps 8 significant bits, so an update below half its ulp "
            f"(0.2-0.4% of the weight) is rounded away; {_pct(nearest['near_edge'])} of the "
            f"updates were between a quarter of an ulp and four ulps (depth n from -2 to 1), "
            f"where rounding decides. "
            f"{_pct(nearest['changed'])} of the bf16 weights changed per step (fp32: "
            f"{_pct(fp32['changed'])}), and {nearest['flips']:.2f} bits flipped per weight per "
            f"step on average (fp32: {fp32['flips']:.2f}).")
    stochastic = figures.get("bf16 stochastic")
    if stochastic and nearest:
        out.append(
            f"Stochastic rounding rounds up with a probability proportional to the remainder: "
            f"single updates are still rounded away ({_pct(stochastic['lost'])} of them), but "
            f"none is lost on average. The landed ones move a whole ulp, so the realized update "
            f"RMS is {stochastic['ratio']:.2f}x the intended one.")
    kahan = figures.get("bf16 Kahan")
    if kahan and nearest:
        out.append(
            f"Kahan summation keeps what rounding dropped in a compensation buffer and adds it "
            f"back on the next steps: {_pct(kahan['lost'])} of the element-steps still left a "
            f"weight unchanged, but what they dropped is not forgotten.")
    if fp32:
        gaps = [f"{name} {row['loss'] - fp32['loss']:+.3f}" for name, row in figures.items()
                if name != "fp32"]
        out.append(f"Final loss (mean of the last tenth of the steps): fp32 {fp32['loss']:.3f}; "
                   f"the others against it: {', '.join(gaps)}.")
    return out


def write_markdown(out: Path, data, series, figure_files: dict[str, str]) -> Path:
    cfg = data["config"]
    table, figures = run_table(data, series)
    optimizer = ("AdamW" if cfg["optimizer"] == "adamw" else "SGD with momentum 0.9")
    lines = [
        "# Where the updates land: a bitkernels demo", "",
        f"A character-level transformer ({cfg['layers']} layers, width {cfg['width']}, "
        f"{cfg['parameters']:,} parameters in {cfg['tensors']} tensors, context "
        f"{cfg['context']}) trained for {cfg['steps']} steps of {cfg['tokens_per_step']:,} "
        f"characters on {cfg['text_source']} ({cfg['text_chars']:,} characters, "
        f"{cfg['vocab']} distinct), with bitkernels' {optimizer} (lr {cfg['lr']}, weight decay "
        f"{cfg['weight_decay']}), once per way of storing the weights: "
        + ", ".join(r["name"] for r in data["runs"]) + ". Every run starts from the same "
        "weights and sees the same batches; the optimizer's kernel counts, for every parameter "
        "at every step, which stored bits flipped, whether the update was rounded away and how "
        f"deep it reached. Measured {cfg['date']} with torch {cfg['torch']} on "
        f"{cfg['device']} ({cfg['threads']} threads, backend {cfg['backend']}).", "",
        table, "", "## Reading", "",
        *[f"- {s}" for s in reading(figures)], "",
        "## Figures", ""]
    captions = {
        "loss": "Training loss per run.",
        "lost": "Share of intended updates rounded away, per logged interval.",
        "heatmap": "Per-bit flip probability: which bits of the stored weights flip. The "
                   "mantissa's low bits carry the learning; the exponent and sign change rarely.",
        "depth": "Update depth n = floor(log2(|update| / ulp(weight))): n <= -1 is the "
                 "underflow regime where round-to-nearest discards the update.",
        "regimes": "Share of updates in the underflow regime over training.",
        "theory": "The theory note's heuristic prediction per bit beside the measured flip "
                  "probability. The heuristic ignores each weight's own magnitude, which the "
                  "measurement reflects: where they disagree, the heuristic does not hold.",
    }
    for key, file in figure_files.items():
        lines += [f"![{captions[key]}]({file})", "", f"*{captions[key]}*", ""]
    lines += ["The numbers behind every figure are in `stats.json` (every counter of every "
              "tensor at every logged step) and `summary.csv` (one row per run and logged "
              "step). `python -m bitkernels report DIR` renders this page again from them."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def render(out: Path | str) -> dict[str, Path]:
    """Figures, summary.csv and report.md from out/stats.json."""
    out = Path(out)
    data = load(out)
    series = {run["name"]: run_series(run) for run in data["runs"]}
    written: dict[str, Path] = {}
    for key, draw in (("loss", figure_loss), ("lost", figure_lost), ("heatmap", figure_heatmap),
                      ("depth", figure_depth), ("regimes", figure_regimes),
                      ("theory", figure_theory)):
        path = out / FIGURES[key]
        draw(data, series, path)
        written[key] = path
    written["csv"] = write_csv(out, summaries(data))
    written["report"] = write_markdown(out, data, series, {k: FIGURES[k] for k in FIGURES})
    return written
