"""Command line: `python -m bitkernels {demo,report,precision,backends,bench}`."""

from __future__ import annotations

import argparse
import sys

import torch

from . import backends
from .ops import bitflip_stats

# The worked example of DESIGN.md: weights ~ N(0, 0.02), one step of +-lr on every element.
_DEMO_LRS = (1e-6, 1e-5, 1e-4, 1e-3)
_DEMO_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import demo, report

    console = Console()
    cfg = demo.DemoConfig(steps=args.steps, model=args.model, batch=args.batch, lr=args.lr,
                          optimizer=args.optimizer, text=args.text, device=args.device,
                          seed=args.seed, log_every=args.log_every,
                          configs=tuple(args.configs.split(",")))
    unknown = [c for c in cfg.configs if c not in demo.CONFIGS]
    if unknown:
        raise SystemExit(f"--configs: unknown {unknown}; choose from {list(demo.CONFIGS)}")
    text, source = demo.load_text(cfg.text)
    data = demo.CharData(text)
    info = demo.describe(cfg, data, source)
    console.print(f"Training a {info['parameters']:,}-parameter character transformer on "
                  f"{source} ({info['text_chars']:,} characters), {cfg.steps} steps per run: "
                  + ", ".join(cfg.configs), highlight=False)
    writer = None
    if args.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        from .integrations.tensorboard import log_bit_stats
    runs = []
    columns = (TextColumn("{task.description:16s}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"),
               TextColumn("lost {task.fields[lost]:5.1f}%"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        for name in cfg.configs:
            task = progress.add_task(name, total=cfg.steps, loss=float("nan"), lost=float("nan"))
            if args.tensorboard:
                writer = SummaryWriter(str(Path(args.tensorboard) / name.replace(" ", "_")))

            def on_step(step, loss, lost, task=task, writer=writer):
                progress.update(task, completed=step, loss=loss, lost=100 * lost)
                if writer is not None:
                    writer.add_scalar("loss", loss, step)

            log = demo.train(cfg, name, data, on_step=on_step)
            if writer is not None:
                from .stats import BitStats

                for entry in log.logged:
                    log_bit_stats(writer, {n: BitStats.from_dict(t)
                                           for n, t in entry["tensors"].items()}, entry["step"])
                writer.close()
            runs.append(log)
    out = Path(args.out)
    report.save(out, info, runs)
    written = report.render(out)
    console.print(f"Wrote {written['report']} with {len(report.FIGURES)} figures, "
                  f"{out / 'stats.json'} and {written['csv']}", highlight=False)
    return 0


def _report(args: argparse.Namespace) -> int:
    from . import report

    written = report.render(args.dir)
    print(f"Rendered {written['report']}, {len(report.FIGURES)} figures and {written['csv']} "
          f"from {args.dir}/stats.json")
    return 0


def _precision(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 100))
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(args.seed)
    weights = torch.randn(args.numel, generator=g) * 0.02
    signs = torch.randint(0, 2, (args.numel,), generator=g).float() * 2 - 1

    table = Table(title=f"One step of size lr on {args.numel:,} weights ~ N(0, 0.02) "
                        f"(backend={args.backend}, device={device})")
    for col in ("dtype", "lr", "unchanged%", "lost%", "bits/elem", "sign", "exp", "mant",
                "depth n"):
        table.add_column(col, justify="right")
    for dtype in _DEMO_DTYPES:
        old = weights.to(dtype).to(device)
        for lr in _DEMO_LRS:
            update = (lr * signs).to(device)
            new = (old.float() + update).to(dtype)
            stats = bitflip_stats(old, new, update=update, backend=args.backend).cpu()
            numel = int(stats.numel)
            by_kind = {"sign": 0, "exponent": 0, "mantissa": 0}
            for label, flips in zip(stats.bit_labels(), stats.flips.tolist()):
                by_kind[label] += flips
            depth = stats.depth.cumsum(0)
            median_n = int(torch.searchsorted(depth, depth[-1] // 2)) + stats.depth_values()[0]
            table.add_row(
                stats.format.name, f"{lr:.0e}", f"{100 * (1 - float(stats.changed_frac())):.1f}",
                f"{100 * int(stats.lost) / numel:.1f}", f"{int(stats.popcount()) / numel:.2f}",
                *(f"{by_kind[k] / numel:.3f}" for k in ("sign", "exponent", "mantissa")),
                str(int(median_n)))
        table.add_section()
    console.print(table)
    console.print(
        "unchanged%: elements whose stored bits did not change; lost%: the update was nonzero "
        "but rounded away.\nbits/elem, sign, exp, mant: bits flipped per element, in all and by "
        "field.\ndepth n: median of floor(log2(|update| / ulp(weight))); n >= 0 always lands, "
        "n <= -3 is always rounded away.", highlight=False)
    return 0


def _backends(_: argparse.Namespace) -> int:
    statuses = backends.available()
    for status in statuses.values():
        mark = "yes" if status.available else "no "
        print(f"{status.name:10s} {mark}  {status.reason}")
    if statuses["cpu"].available:
        print(f"cpu kernels: {backends.cpu_isa()} (this CPU runs {', '.join(backends.cpu_isas())})")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from . import goals, roofline

    console = Console(width=max(Console().width, 120))
    device = torch.device(args.device)
    env = roofline.environment(device)
    console.print(", ".join(f"{k} {v}" for k, v in env.items()), highlight=False)
    rows: list[roofline.Row] = []

    def report(case_rows: list[roofline.Row]) -> None:
        rows.extend(case_rows)
        console.print(roofline.table(case_rows))

    backends = tuple(args.backends.split(",")) if args.backends else None
    verdicts = None
    if args.goals:
        verdicts = goals.run(
            device, rounds=args.rounds or 20,
            size=roofline.parse_size(args.sizes.split(",")[0]) if args.sizes else None,
            model_width=args.model_width, backends=backends, report=report)
        console.print(goals.table(verdicts))
    else:
        plan = roofline.Plan(
            device=device,
            sizes=tuple(roofline.parse_size(s) for s in args.sizes.split(",")) if args.sizes
            else (roofline.FULL_SIZES if args.full else roofline.QUICK_SIZES),
            dtypes=tuple(args.dtypes.split(",")), optimizers=tuple(args.optimizers.split(",")),
            backends=backends, cases=tuple(args.cases.split(",")),
            rounds=args.rounds or (30 if args.full else 10))
        if args.full:
            plan.model_width, plan.model_vocab, plan.model_context = 768, 50257, 1024
        if args.model_width:
            plan.model_width = args.model_width
        roofline.run(plan, report=report)
    if args.json:
        report_json = roofline.to_json(rows, env)
        if verdicts is not None:
            report_json["goals"] = [v.as_dict() for v in verdicts]
        with open(args.json, "w") as f:
            json.dump(report_json, f, indent=1)
        console.print(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            if verdicts is not None:
                f.write(goals.markdown(verdicts) + "\n\n")
            f.write(roofline.markdown(rows) + "\n")
        console.print(f"wrote {args.markdown}")
    return 0


def _demo_configs() -> tuple[str, ...]:
    from .demo import CONFIGS

    return tuple(CONFIGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bitkernels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small transformer once per way of storing its "
                                       "weights (fp32, bf16 nearest / stochastic / Kahan) and "
                                       "report where the updates land")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--model", default="small", choices=["tiny", "small", "base"])
    demo.add_argument("--batch", type=int, default=32)
    demo.add_argument("--lr", type=float, default=1e-3)
    demo.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    demo.add_argument("--text", help="train on this text file (default: the Python standard "
                                     "library's sources)")
    demo.add_argument("--device", default="cpu")
    demo.add_argument("--out", default="reports/demo")
    demo.add_argument("--configs", default=",".join(_demo_configs()),
                      help="comma-separated runs")
    demo.add_argument("--log-every", type=int, default=5, help="steps per logged interval")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard event files "
                                                          "here (needs tensorboard)")
    demo.set_defaults(run=_demo)
    report = sub.add_parser("report", help="render a demo's figures and report.md again from "
                                           "its stats.json")
    report.add_argument("dir")
    report.set_defaults(run=_report)
    precision = sub.add_parser("precision", help="how much of one optimizer-sized step reaches "
                                                 "the stored bits in fp32, bf16 and fp16")
    precision.add_argument("--numel", type=int, default=1 << 20)
    precision.add_argument("--device", default="cpu")
    precision.add_argument("--backend", default="auto")
    precision.add_argument("--seed", type=int, default=0)
    precision.set_defaults(run=_precision)
    sub.add_parser("backends", help="which backends can run here").set_defaults(run=_backends)
    bench = sub.add_parser("bench", help="time the kernels against torch, the do-it-yourself "
                                         "path and a copy of the same bytes (roofline)")
    scope = bench.add_mutually_exclusive_group()
    scope.add_argument("--quick", action="store_true", help="sizes 64K,1M,16M, 10 rounds, a "
                                                            "small transformer (default)")
    scope.add_argument("--full", action="store_true", help="sizes 4K..64M, 30 rounds, GPT-2 "
                                                           "small's parameter list")
    scope.add_argument("--goals", action="store_true",
                       help="the cases issue 5's goals are stated on (CPU: AdamW and "
                            "bitflip_stats at 16M, fp32 and bf16; GPU: AdamW fp32 at 64M and "
                            "GPT-2 small), then each goal, measured, met or missed; --sizes and "
                            "--rounds apply, and on a GPU --model-width and --backends")
    bench.add_argument("--sizes", help="comma-separated element counts, e.g. 4K,16M")
    bench.add_argument("--dtypes", default="float32,bfloat16,float16")
    bench.add_argument("--optimizers", default="adamw,sgd_momentum,lion")
    bench.add_argument("--backends", help="comma-separated; default: every one that runs on "
                                          "the device")
    bench.add_argument("--cases", default="steps,bitflip,model",
                       help="steps, bitflip (bitflip_stats), model (a 12-layer transformer)")
    bench.add_argument("--rounds", type=int, help="alternating rounds per case")
    bench.add_argument("--model-width", type=int, help="width of the transformer case (quick: "
                                                       "256, full: 768, GPT-2 small)")
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--json", help="write every row and the environment to this file")
    bench.add_argument("--markdown", help="write a one-line-per-case summary table here")
    bench.set_defaults(run=_bench)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
