"""The roofline runner behind `python -m bitkernels bench`: times bitkernels' kernels beside
torch's implementations, the do-it-yourself torch-ops path and a copy of the same bytes, all in
one run and alternately (round after round, every candidate of a case once per round), so that
a shared machine's noise hits them alike. Each case reports, per candidate: the median time and
its spread, the bytes the candidate must move (the DESIGN.md roofline), the achieved GB/s, that
as a fraction of the case's copy bandwidth, the ratio to torch's fused step, and statistics
on/off.

Byte counts per element (read + written), ours: states are fp32 for every parameter dtype,
AdamW 4 arrays read + 3 written, SGD with momentum and Lion 3 + 2; torch's fused and foreach
steps keep states in the parameter dtype, which moves fewer bytes for bf16/fp16.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch

from . import backends
from .formats import format_of
from .ops import bitflip_stats
from .stats import BitStats

OPTIMIZERS = ("adamw", "sgd_momentum", "lion")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
QUICK_SIZES = (1 << 16, 1 << 20, 1 << 24)
FULL_SIZES = (1 << 12, 1 << 16, 1 << 20, 1 << 24, 1 << 26)
# The do-it-yourself paths run a few dozen torch ops per tensor: above these sizes a round takes
# seconds, and they are timed on fewer rounds.
DIY_STEP_MAX = 1 << 20
DIY_ROUNDS = 3
# Arrays per optimizer, (read, written), besides the parameter and its gradient.
_STATE_ARRAYS = {"adamw": 2, "sgd_momentum": 1, "lion": 1}


def step_bytes(optimizer: str, numel: int, param_bytes: int, state_bytes: int = 4) -> int:
    """Bytes one step moves: parameter and gradient read, parameter written, every state read
    and written (AdamW fp32: 28 per element)."""
    states = _STATE_ARRAYS[optimizer]
    return numel * (3 * param_bytes + 2 * states * state_bytes)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def size_label(n: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


# ---- timing ------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One thing to time: fn() runs it once. bytes: what it must move (0: not a roofline case)."""

    name: str
    fn: Callable[[], object]
    bytes: int = 0
    max_rounds: int | None = None
    times: list[float] = field(default_factory=list)  # seconds per call, one per round
    repeat: int = 1  # calls per timed batch (small cases)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def spread(self) -> tuple[float, float]:
        if len(self.times) < 4:
            return min(self.times), max(self.times)
        q = statistics.quantiles(self.times, n=4)
        return q[0], q[2]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_alternately(candidates: list[Candidate], rounds: int, device: torch.device,
                     min_batch_s: float = 2e-3) -> None:
    """Fills each candidate's times: a warm-up call, a repeat count that makes a timed batch
    last at least min_batch_s, then `rounds` rounds in which every candidate runs one batch.
    Each round runs them in a new order (seeded): a case's time depends on the one before it
    (what that left in the caches to write back or evict), and in a fixed order every case
    always follows the same one (AdamW 16M on this project's CPU, statistics on/off: fp32 1.07
    in a fixed order, 1.04 shuffled; bf16 1.16 and 1.11)."""
    for c in candidates:
        c.fn()
        _sync(device)
        start = time.perf_counter()
        c.fn()
        _sync(device)
        once = max(time.perf_counter() - start, 1e-7)
        c.repeat = max(1, min(1000, int(min_batch_s / once)))
    order = list(candidates)
    shuffle = random.Random(0).shuffle
    for r in range(rounds):
        shuffle(order)
        for c in order:
            if c.max_rounds is not None and r >= c.max_rounds:
                continue
            _sync(device)
            start = time.perf_counter()
            for _ in range(c.repeat):
                c.fn()
            _sync(device)
            c.times.append((time.perf_counter() - start) / c.repeat)


# ---- problems ----------------------------------------------------------------------------------
def parameter(size: int, dtype: torch.dtype, device: torch.device,
              seed: int = 0) -> torch.nn.Parameter:
    """Weights ~ N(0, 0.02) and gradients ~ N(0, 1e-3) in the parameter dtype."""
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter((torch.randn(size, generator=g) * 0.02).to(device=device, dtype=dtype))
    p.grad = (torch.randn(size, generator=g) * 1e-3).to(device=device, dtype=dtype)
    return p


def transformer_shapes(layers: int = 12, width: int = 768, vocab: int = 50257,
                       context: int = 1024) -> list[tuple[int, ...]]:
    """The parameter list of a GPT-2-style decoder (GPT-2 small with the defaults: 148 tensors,
    124M elements): embeddings, then per layer two LayerNorms, attention and MLP weights and
    biases, then the final LayerNorm."""
    shapes: list[tuple[int, ...]] = [(vocab, width), (context, width)]
    for _ in range(layers):
        shapes += [(width,), (width,), (width, 3 * width), (3 * width,), (width, width), (width,),
                   (width,), (width,), (width, 4 * width), (4 * width,), (4 * width, width),
                   (width,)]
    return shapes + [(width,), (width,)]


def model_parameters(shapes: Iterable[tuple[int, ...]], dtype: torch.dtype,
                     device: torch.device) -> list[torch.nn.Parameter]:
    params = []
    for i, shape in enumerate(shapes):
        n = 1
        for s in shape:
            n *= s
        params.append(parameter(n, dtype, device, seed=i))
    return params


def clone_parameters(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    """Independent copies (values and gradients), one optimizer's worth."""
    out = []
    for p in params:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = p.grad.clone()
        out.append(q)
    return out


def ours_optimizer(optimizer: str, params, backend: str, track: bool):
    """bitkernels' optimizer `optimizer` (one of OPTIMIZERS) with the benchmarks' settings."""
    from . import optim
    cls, kwargs = {"adamw": (optim.AdamW, dict(lr=1e-3)),
                   "sgd_momentum": (optim.SGD, dict(lr=1e-3, momentum=0.9)),
                   "lion": (optim.Lion, dict(lr=1e-4))}[optimizer]
    return cls(params, backend=backend, track_bits=track, **kwargs)


def torch_optimizer(optimizer: str, params, impl: str):
    """torch.optim's AdamW or SGD with momentum, impl "fused" or "foreach"."""
    cls, kwargs = {"adamw": (torch.optim.AdamW, dict(lr=1e-3)),
                   "sgd_momentum": (torch.optim.SGD, dict(lr=1e-3, momentum=0.9))}[optimizer]
    return cls(params, **{impl: True}, **kwargs)


def diy_flip_counts(old: torch.Tensor, new: torch.Tensor):
    """What a user writes today: XOR the bit views and count each position with torch ops."""
    fmt = format_of(old.dtype)
    x = old.view(fmt.bits_dtype) ^ new.view(fmt.bits_dtype)
    flips = torch.stack([((x >> k) & 1).sum() for k in range(fmt.width)])
    return flips, (x != 0).sum()


def diy_step(opt, params):
    """One step of opt with the do-it-yourself statistics: snapshot, step, XOR and count."""
    def step():
        old = [p.detach().clone() for p in params]
        opt.step()
        return [diy_flip_counts(o, p.detach()) for o, p in zip(old, params)]
    return step


def _copy(nbytes: int, device: torch.device) -> Candidate:
    """A copy of nbytes / 2 bytes: nbytes moved (read + written)."""
    src = torch.empty(max(1, nbytes // 2), dtype=torch.uint8, device=device).random_()
    dst = torch.empty_like(src)
    return Candidate("copy (same bytes)", lambda: dst.copy_(src), bytes=2 * src.numel())


def benchmark_backends(device: torch.device, wanted: Iterable[str] | None = None) -> list[str]:
    """The compiled backends that run on device (Triton under its CPU interpreter is a test
    vehicle, not something to time)."""
    names = [n for n in ("cuda", "triton", "cpu") if backends._missing(n, device.type) is None
             and not (n == "triton" and device.type == "cpu")]
    if wanted is not None:
        names = [n for n in names if n in wanted]
    return names


# ---- cases -------------------------------------------------------------------------------------
@dataclass
class Row:
    """One candidate of one case, as printed and written to JSON."""

    case: str
    name: str
    median_ms: float
    p25_ms: float
    p75_ms: float
    rounds: int
    bytes: int
    gbps: float | None
    copy_fraction: float | None
    vs_torch_fused: float | None
    stats_on_off: float | None


def _rows(case: str, candidates: list[Candidate]) -> list[Row]:
    by_name = {c.name: c for c in candidates}
    copy = by_name.get("copy (same bytes)")
    copy_gbps = copy.bytes / copy.median / 1e9 if copy else None
    fused = by_name.get("torch fused")
    rows = []
    for c in candidates:
        lo, hi = c.spread()
        gbps = c.bytes / c.median / 1e9 if c.bytes else None
        off = by_name.get(c.name.replace(", statistics", ", no statistics"))
        rows.append(Row(
            case=case, name=c.name, median_ms=c.median * 1e3, p25_ms=lo * 1e3, p75_ms=hi * 1e3,
            rounds=len(c.times), bytes=c.bytes, gbps=gbps,
            copy_fraction=gbps / copy_gbps if gbps and copy_gbps and c is not copy else None,
            vs_torch_fused=(c.median / fused.median
                            if fused and c is not fused and c is not copy else None),
            stats_on_off=(c.median / off.median
                          if off is not None and off is not c and ", statistics" in c.name
                          else None)))
    return rows


def step_case(optimizer: str, dtype: torch.dtype, size: int, device: torch.device,
              rounds: int, backend_names: list[str]) -> list[Row]:
    fmt = format_of(dtype)
    candidates = []
    ours_bytes = step_bytes(optimizer, size, fmt.width // 8)
    for backend in backend_names:
        for track in (True, False):
            opt = ours_optimizer(optimizer, [parameter(size, dtype, device)], backend, track)
            label = "statistics" if track else "no statistics"
            candidates.append(Candidate(f"ours[{backend}], {label}", opt.step, bytes=ours_bytes))
    if optimizer in ("adamw", "sgd_momentum"):
        theirs_bytes = step_bytes(optimizer, size, fmt.width // 8, fmt.width // 8)
        for impl in ("fused", "foreach"):
            opt = torch_optimizer(optimizer, [parameter(size, dtype, device)], impl)
            candidates.append(Candidate(f"torch {impl}", opt.step, bytes=theirs_bytes))
        if size <= DIY_STEP_MAX:
            params = [parameter(size, dtype, device)]
            step = diy_step(torch_optimizer(optimizer, params, "fused"), params)
            candidates.append(Candidate("torch fused + do-it-yourself flips", step,
                                        max_rounds=DIY_ROUNDS))
    candidates.append(_copy(ours_bytes, device))
    time_alternately(candidates, rounds, device)
    return _rows(f"{optimizer} {fmt.name} {size_label(size)}", candidates)


def bitflip_case(dtype: torch.dtype, size: int, device: torch.device, rounds: int,
                 backend_names: list[str]) -> list[Row]:
    fmt = format_of(dtype)
    g = torch.Generator().manual_seed(0)
    old = (torch.randn(size, generator=g)).to(device=device, dtype=dtype)
    update = (torch.randn(size, generator=g) * 1e-3).to(device)
    new = (old.float() + update).to(dtype)
    nbytes = 2 * size * (fmt.width // 8)
    candidates = []
    for backend in backend_names:
        out = BitStats(dtype, device)
        candidates.append(Candidate(
            f"bitflip_stats[{backend}]",
            lambda b=backend, o=out: bitflip_stats(old, new, backend=b, out=o), bytes=nbytes))
        candidates.append(Candidate(
            f"bitflip_stats[{backend}], update=",
            lambda b=backend, o=out: bitflip_stats(old, new, update=update, backend=b, out=o),
            bytes=nbytes + 4 * size))
    candidates.append(Candidate("do-it-yourself torch ops", lambda: diy_flip_counts(old, new),
                                bytes=nbytes, max_rounds=DIY_ROUNDS))
    candidates.append(_copy(nbytes, device))
    time_alternately(candidates, rounds, device)
    return _rows(f"bitflip_stats {fmt.name} {size_label(size)}", candidates)


def model_case(dtype: torch.dtype, device: torch.device, rounds: int, backend_names: list[str],
               width: int, vocab: int, context: int) -> list[Row]:
    """AdamW on the parameter list of a 12-layer transformer: many tensors of mixed sizes in one
    step, so launch and per-tensor overheads show."""
    fmt = format_of(dtype)
    shapes = transformer_shapes(12, width, vocab, context)
    base = model_parameters(shapes, dtype, device)
    numel = sum(p.numel() for p in base)
    ours_bytes = step_bytes("adamw", numel, fmt.width // 8)
    candidates = []
    for backend in backend_names:
        for track in (True, False):
            opt = ours_optimizer("adamw", clone_parameters(base), backend, track)
            label = "statistics" if track else "no statistics"
            candidates.append(Candidate(f"ours[{backend}], {label}", opt.step, bytes=ours_bytes))
    theirs_bytes = step_bytes("adamw", numel, fmt.width // 8, fmt.width // 8)
    for impl in ("fused", "foreach"):
        opt = torch_optimizer("adamw", clone_parameters(base), impl)
        candidates.append(Candidate(f"torch {impl}", opt.step, bytes=theirs_bytes))
    candidates.append(_copy(ours_bytes, device))
    time_alternately(candidates, rounds, device)
    return _rows(f"adamw {fmt.name} 12-layer transformer ({len(shapes)} tensors, "
                 f"{numel / 1e6:.1f}M)", candidates)


# ---- the run -------------------------------------------------------------------------------------
@dataclass
class Plan:
    device: torch.device
    sizes: tuple[int, ...] = QUICK_SIZES
    dtypes: tuple[str, ...] = tuple(DTYPES)
    optimizers: tuple[str, ...] = OPTIMIZERS
    backends: tuple[str, ...] | None = None
    cases: tuple[str, ...] = ("steps", "bitflip", "model")
    rounds: int = 10
    model_width: int = 256
    model_vocab: int = 8192
    model_context: int = 512


def run(plan: Plan, report: Callable[[list[Row]], None] = lambda rows: None) -> list[Row]:
    """Runs every case of the plan, calling report(rows) after each; returns all rows."""
    names = benchmark_backends(plan.device, plan.backends)
    if not names:
        raise backends.BackendUnavailable(
            f"no bitkernels backend can run on {plan.device} (see `python -m bitkernels backends`)")
    rows: list[Row] = []

    def add(case_rows: list[Row]) -> None:
        rows.extend(case_rows)
        report(case_rows)

    for dtype_name in plan.dtypes:
        dtype = DTYPES[dtype_name]
        if "steps" in plan.cases:
            for optimizer in plan.optimizers:
                for size in plan.sizes:
                    add(step_case(optimizer, dtype, size, plan.device, plan.rounds, names))
        if "bitflip" in plan.cases:
            for size in plan.sizes:
                add(bitflip_case(dtype, size, plan.device, plan.rounds, names))
        if "model" in plan.cases:
            add(model_case(dtype, plan.device, plan.rounds, names, plan.model_width,
                           plan.model_vocab, plan.model_context))
    return rows


def environment(device: torch.device) -> dict:
    """What the figures were measured on."""
    import platform

    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpu": _cpu_model(), "threads": torch.get_num_threads(), "device": str(device)}
    if backends._missing("cpu", "cpu") is None:
        info["cpu_kernels"] = backends.cpu_isa()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        try:
            import triton
            info["triton"] = triton.__version__
        except ImportError:
            pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def to_json(rows: list[Row], env: dict) -> dict:
    return {"environment": env, "rows": [asdict(r) for r in rows]}


def table(rows: list[Row]):
    """A rich Table of one case's rows."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(rows[0].case), title_justify="left")
    for col in ("candidate", "median ms", "p25-p75 ms", "MB moved", "GB/s", "of copy",
                "vs torch fused", "stats on/off"):
        t.add_column(col, justify="left" if col == "candidate" else "right")

    def fmt(x, spec):
        return "" if x is None else format(x, spec)

    for r in rows:
        t.add_row(escape(r.name), f"{r.median_ms:.3f}", f"{r.p25_ms:.3f}-{r.p75_ms:.3f}",
                  fmt(r.bytes / 1e6 if r.bytes else None, ".1f"), fmt(r.gbps, ".1f"),
                  fmt(r.copy_fraction, ".2f"), fmt(r.vs_torch_fused, ".2f"),
                  fmt(r.stats_on_off, ".2f"))
    return t


def markdown(rows: list[Row]) -> str:
    """One line per case: ours with and without statistics (the first backend), torch's fused
    step, bitflip_stats or the copy, and the ratios: a summary for bench/RESULTS.md."""
    cases: dict[str, list[Row]] = {}
    for r in rows:
        cases.setdefault(r.case, []).append(r)
    lines = ["| case | ours, statistics (ms) | ours, no statistics (ms) | torch fused (ms) | "
             "stats / torch fused | stats on/off | GB/s (stats) | of copy | copy (ms) |",
             "|---|---|---|---|---|---|---|---|---|"]

    def ms(r: Row | None) -> str:
        return "" if r is None else f"{r.median_ms:.3f}"

    def num(x: float | None, spec: str = ".2f") -> str:
        return "" if x is None else format(x, spec)

    for case, case_rows in cases.items():
        by_name = {r.name: r for r in case_rows}
        on = next((r for r in case_rows if r.name.endswith(", statistics")
                   or r.name.startswith("bitflip_stats") and "update" not in r.name), None)
        off = next((r for r in case_rows if r.name.endswith(", no statistics")), None)
        copy = by_name.get("copy (same bytes)")
        lines.append(f"| {case} | {ms(on)} | {ms(off)} | {ms(by_name.get('torch fused'))} | "
                     f"{num(on.vs_torch_fused if on else None)} | "
                     f"{num(on.stats_on_off if on else None)} | "
                     f"{num(on.gbps if on else None, '.1f')} | "
                     f"{num(on.copy_fraction if on else None)} | {ms(copy)} |")
    return "\n".join(lines)
