"""The demo behind `python -m bitkernels demo`: a small character-level transformer trained on
text that ships with Python (its standard library's sources, or any --text file), once per
configuration of the stored weights: fp32, bf16 with round-to-nearest, bf16 with stochastic
rounding, bf16 with Kahan compensation. Every configuration starts from the same weights and
sees the same batches; the optimizer is bitkernels' own, so every step's bit statistics are
measured as it runs (bitkernels.report turns them into figures)."""

from __future__ import annotations

import math
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import backends, optim

# name -> (parameter dtype, rounding, kahan)
CONFIGS: dict[str, tuple[torch.dtype, str, bool]] = {
    "fp32": (torch.float32, "nearest", False),
    "bf16 nearest": (torch.bfloat16, "nearest", False),
    "bf16 stochastic": (torch.bfloat16, "stochastic", False),
    "bf16 Kahan": (torch.bfloat16, "nearest", True),
}

# name -> (width, layers, heads, context)
MODELS = {"tiny": (64, 2, 4, 32), "small": (128, 2, 4, 64), "base": (256, 4, 8, 128)}

# Standard-library modules whose sources make the default text: prose-heavy docstrings and code.
STDLIB_TEXT = ("textwrap.py", "argparse.py", "difflib.py", "pydoc.py", "inspect.py",
               "statistics.py", "fractions.py", "calendar.py", "string.py", "pprint.py")
DEFAULT_TEXT_BYTES = 400_000


@dataclass
class DemoConfig:
    steps: int = 300
    model: str = "small"
    batch: int = 32
    lr: float = 1e-3
    optimizer: str = "adamw"  # or "sgd" (momentum 0.9)
    weight_decay: float = 0.01
    text: str | None = None  # a file; None: the standard library's sources
    device: str = "cpu"
    seed: int = 0
    log_every: int = 5
    configs: tuple[str, ...] = tuple(CONFIGS)


@dataclass
class RunLog:
    """One configuration's run: per-step losses, and every parameter's BitStats (as dicts)
    accumulated over each logging interval."""

    name: str
    dtype: str
    rounding: str
    kahan: bool
    losses: list[float] = field(default_factory=list)
    logged: list[dict[str, Any]] = field(default_factory=list)  # {"step", "loss", "tensors"}
    seconds: float = 0.0


# ---- data ---------------------------------------------------------------------------------------
def default_text() -> tuple[str, str]:
    """(text, where it came from): standard-library sources, or bitkernels' own when the Python
    installation ships no .py files."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [stdlib / name for name in STDLIB_TEXT if (stdlib / name).is_file()]
    source = f"Python {sysconfig.get_python_version()} standard library ({len(files)} files)"
    if not files:
        files = sorted(Path(__file__).parent.rglob("*.py"))
        source = f"bitkernels' own sources ({len(files)} files)"
    text = "".join(f.read_text(encoding="utf-8", errors="replace") for f in files)
    return text[:DEFAULT_TEXT_BYTES], source


def load_text(path: str | None) -> tuple[str, str]:
    if path is None:
        return default_text()
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return text, str(path)


class CharData:
    """Characters mapped to ids; random windows of context + 1 characters as batches."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        index = {c: i for i, c in enumerate(self.chars)}
        self.ids = torch.tensor([index[c] for c in text], dtype=torch.long)

    @property
    def vocab(self) -> int:
        return len(self.chars)

    def batch(self, size: int, context: int, generator: torch.Generator):
        start = torch.randint(0, len(self.ids) - context - 1, (size,), generator=generator)
        windows = torch.stack([self.ids[s:s + context + 1] for s in start.tolist()])
        return windows[:, :-1], windows[:, 1:]


# ---- model --------------------------------------------------------------------------------------
class CharTransformer(nn.Module):
    """A decoder-only transformer over characters (pre-norm blocks, causal attention)."""

    def __init__(self, vocab: int, width: int, layers: int, heads: int, context: int):
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        block = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(context),
                             persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]
        h = self.token(ids) + self.position(torch.arange(n, device=ids.device))
        h = self.blocks(h, mask=self.causal[:n, :n].to(h.dtype), is_causal=True)
        return self.head(self.norm(h))


def _optimizer(cfg: DemoConfig, model: nn.Module, rounding: str, kahan: bool):
    params = model.named_parameters()
    if cfg.optimizer == "adamw":
        return optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, rounding=rounding,
                           kahan=kahan, seed=cfg.seed)
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay,
                         rounding=rounding, kahan=kahan, seed=cfg.seed)
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {cfg.optimizer!r}")


# ---- training -----------------------------------------------------------------------------------
def train(cfg: DemoConfig, name: str, data: CharData,
          on_step: Callable[[int, float, float], None] = lambda step, loss, lost: None) -> RunLog:
    """One configuration: the same initial weights and batches as every other (seeded), the
    loss in fp32, every parameter's statistics logged (and reset) every cfg.log_every steps.
    on_step(step, loss, lost fraction of the last interval) reports progress."""
    dtype, rounding, kahan = CONFIGS[name]
    width, layers, heads, context = MODELS[cfg.model]
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = CharTransformer(data.vocab, width, layers, heads, context).to(device=device,
                                                                        dtype=dtype)
    opt = _optimizer(cfg, model, rounding, kahan)
    batches = torch.Generator().manual_seed(cfg.seed + 1)
    log = RunLog(name, str(dtype).removeprefix("torch."), rounding, kahan)
    start = time.perf_counter()
    interval: list[float] = []
    lost = float("nan")
    for step in range(1, cfg.steps + 1):
        x, y = data.batch(cfg.batch, context, batches)
        logits = model(x.to(device))
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, data.vocab),
                                           y.to(device).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        log.losses.append(value)
        interval.append(value)
        if step % cfg.log_every == 0 or step == cfg.steps:
            stats = opt.bit_stats()
            tensors = {n: s.to_dict() for n, s in stats.items()}
            moving = sum(sum(t["depth"]) for t in tensors.values())
            lost = sum(t["lost"] for t in tensors.values()) / max(moving, 1)
            log.logged.append({"step": step, "loss": sum(interval) / len(interval),
                               "tensors": tensors})
            opt.reset_bit_stats()
            interval = []
        on_step(step, value, lost)
    log.seconds = time.perf_counter() - start
    return log


def describe(cfg: DemoConfig, data: CharData, source: str) -> dict[str, Any]:
    """What was run, for stats.json and the report."""
    width, layers, heads, context = MODELS[cfg.model]
    model = CharTransformer(data.vocab, width, layers, heads, context)
    numel = sum(p.numel() for p in model.parameters())
    info = asdict(cfg)
    info.update({
        "text_source": source, "text_chars": int(data.ids.numel()), "vocab": data.vocab,
        "width": width, "layers": layers, "heads": heads, "context": context,
        "parameters": numel, "tensors": len(list(model.parameters())),
        "tokens_per_step": cfg.batch * context, "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "backend": backends.resolve("auto", torch.device(cfg.device))[0],
    })
    if info["backend"] == "cpu":
        info["cpu_kernels"] = backends.cpu_isa()
    return info


def initial_loss(vocab: int) -> float:
    """The cross-entropy of a uniform guess, where training starts."""
    return math.log(vocab)
