"""BitStats: the counters of the statistics contract (DESIGN.md) for one tensor.

Counters live in two small tensors on the device where they are accumulated, an int64 buffer
(``counters``) and a float64 buffer (``sums``), so kernels add to them without a host sync.
The slot layout mirrors csrc/include/bitkernels/bitstats.h; a test checks the two agree.
"""

from __future__ import annotations

from typing import Any

import torch

from .formats import FloatFormat, format_of

__all__ = ["BitStats", "Layout", "summary"]


class Layout:
    """Slots of the int64 ``counters`` and float64 ``sums`` buffers."""

    FLIPS = 0
    MAX_WIDTH = 32
    CHANGED = FLIPS + MAX_WIDTH
    LOST = CHANGED + 1
    ZERO = LOST + 1
    NONFINITE = ZERO + 1
    NUMEL = NONFINITE + 1
    STEPS = NUMEL + 1
    DEPTH = STEPS + 1
    DEPTH_BINS = 64
    DEPTH_MIN = -40
    DEPTH_MAX = DEPTH_MIN + DEPTH_BINS - 1
    NUM_COUNTERS = DEPTH + DEPTH_BINS

    SUM_D2 = 0
    SUM_G2 = 1
    SUM_P2 = 2
    SUM_R2 = 3
    NUM_SUMS = 4

    # Order of stats_layout() in csrc/ops.cpp.
    AS_LIST = (FLIPS, MAX_WIDTH, CHANGED, LOST, ZERO, NONFINITE, NUMEL, STEPS, DEPTH, DEPTH_BINS,
               DEPTH_MIN, NUM_COUNTERS, SUM_D2, SUM_G2, SUM_P2, SUM_R2, NUM_SUMS)


_SCALAR_COUNTERS = {
    "changed": Layout.CHANGED,
    "lost": Layout.LOST,
    "zero": Layout.ZERO,
    "nonfinite": Layout.NONFINITE,
    "numel": Layout.NUMEL,
    "steps": Layout.STEPS,
}
_SUMS = {"sum_d2": Layout.SUM_D2, "sum_g2": Layout.SUM_G2, "sum_p2": Layout.SUM_P2,
         "sum_r2": Layout.SUM_R2}


class BitStats:
    """Accumulated bit statistics of one parameter tensor (or a merge of several of one dtype).

    Counters (0-d or 1-d int64 tensor views, on ``device``):
      flips[k]   elements whose bit k changed (k = 0 mantissa LSB, width-1 sign)
      changed    elements with any bit changed
      lost       elements whose finite nonzero intended update d changed no bit
      zero       elements with d == 0
      nonfinite  elements with d or the new value inf/NaN
      depth[j]   finite nonzero updates with floor(log2(|d| / ulp(old))) = j + Layout.DEPTH_MIN
                 (clamped to [-40, 23])
      numel, steps
    Sums (float64, over elements whose old, new and d are finite): sum_d2, sum_g2, sum_p2,
    sum_r2. Reading a value as a Python number (``int(stats.changed)``) syncs with the device.
    """

    __slots__ = ("format", "counters", "sums")

    def __init__(self, dtype: torch.dtype | FloatFormat = torch.float32,
                 device: torch.device | str = "cpu", *, counters: torch.Tensor | None = None,
                 sums: torch.Tensor | None = None):
        self.format = format_of(dtype)
        if counters is None:
            counters = torch.zeros(Layout.NUM_COUNTERS, dtype=torch.int64, device=device)
        if sums is None:
            sums = torch.zeros(Layout.NUM_SUMS, dtype=torch.float64, device=counters.device)
        if counters.dtype != torch.int64 or counters.shape != (Layout.NUM_COUNTERS,):
            raise ValueError(f"counters must be int64 of shape ({Layout.NUM_COUNTERS},)")
        if sums.dtype != torch.float64 or sums.shape != (Layout.NUM_SUMS,):
            raise ValueError(f"sums must be float64 of shape ({Layout.NUM_SUMS},)")
        if sums.device != counters.device:
            raise ValueError("counters and sums must be on the same device")
        self.counters = counters
        self.sums = sums

    # ---- raw counters --------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.format.dtype

    @property
    def width(self) -> int:
        return self.format.width

    @property
    def device(self) -> torch.device:
        return self.counters.device

    @property
    def flips(self) -> torch.Tensor:
        return self.counters[Layout.FLIPS:Layout.FLIPS + self.width]

    @property
    def depth(self) -> torch.Tensor:
        return self.counters[Layout.DEPTH:Layout.DEPTH + Layout.DEPTH_BINS]

    # ---- derived -------------------------------------------------------------------------
    def popcount(self) -> torch.Tensor:
        """Total bits flipped (sum of flips)."""
        return self.flips.sum()

    def flip_prob(self) -> torch.Tensor:
        """Per-bit-position flip probability flips[k] / numel (float64; zeros when empty)."""
        return self.flips.double() / self.counters[Layout.NUMEL].clamp_min(1)

    def changed_frac(self) -> torch.Tensor:
        """Fraction of element-steps whose stored bits changed (float64)."""
        return self.counters[Layout.CHANGED].double() / self.counters[Layout.NUMEL].clamp_min(1)

    def bit_labels(self) -> tuple[str, ...]:
        """'mantissa' / 'exponent' / 'sign' for each position of ``flips``."""
        return self.format.bit_labels

    @staticmethod
    def depth_values() -> torch.Tensor:
        """The update depth n of each ``depth`` bin (-40 .. 23)."""
        return torch.arange(Layout.DEPTH_MIN, Layout.DEPTH_MAX + 1)

    def flips_per_element(self) -> torch.Tensor:
        """Bits flipped per parameter per step: popcount / numel (numel counts every step)."""
        return self.popcount().double() / self.counters[Layout.NUMEL].clamp_min(1)

    def moving(self) -> torch.Tensor:
        """Element-steps with a finite nonzero intended update (the depth histogram's total)."""
        return self.depth.sum()

    def lost_frac(self) -> torch.Tensor:
        """Fraction of intended updates (finite, nonzero) that changed no stored bit."""
        return self.counters[Layout.LOST].double() / self.moving().clamp_min(1)

    def zero_frac(self) -> torch.Tensor:
        """Fraction of element-steps whose intended update was exactly zero."""
        return self.counters[Layout.ZERO].double() / self.counters[Layout.NUMEL].clamp_min(1)

    def nonfinite_frac(self) -> torch.Tensor:
        """Fraction of element-steps with an inf/NaN update or new value."""
        return (self.counters[Layout.NONFINITE].double()
                / self.counters[Layout.NUMEL].clamp_min(1))

    def regime_fractions(self) -> dict[str, float]:
        """Fractions of the intended updates in each regime of the depth n =
        floor(log2(|d| / ulp(old))), measured per element: underflow n <= -1 (the update is
        below half an ulp's reach: rounded away unless it ties up), effective 0 <= n < p
        (reaches some mantissa bits), saturation n >= p (reaches past the mantissa)."""
        depth = self.depth.double().cpu()
        n = self.depth_values()
        total = max(float(depth.sum()), 1.0)
        p = self.format.mantissa_bits
        return {"underflow": float(depth[n <= -1].sum()) / total,
                "effective": float(depth[(n >= 0) & (n < p)].sum()) / total,
                "saturation": float(depth[n >= p].sum()) / total}

    def activation_energy(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The empirical distribution of the activation energy E = -n in bits (the theory
        note's quantity, measured per element): (energies, probabilities), energies from 40
        down to -23; the end bins hold everything beyond them."""
        depth = self.depth.double().cpu()
        return -self.depth_values(), depth / max(float(depth.sum()), 1.0)

    def rms_ratios(self) -> dict[str, float]:
        """Update-to-weight RMS ratios from the float64 sums: intended sqrt(sum d^2 / sum p^2),
        realized sqrt(sum (new-old)^2 / sum p^2), and realized / intended (1 when every update
        lands exactly; below 1 when rounding eats them)."""
        d2, r2, p2 = (float(self.sums[k]) for k in (Layout.SUM_D2, Layout.SUM_R2,
                                                    Layout.SUM_P2))
        nan = float("nan")
        return {"intended": (d2 / p2) ** 0.5 if p2 > 0 else nan,
                "realized": (r2 / p2) ** 0.5 if p2 > 0 else nan,
                "realized/intended": (r2 / d2) ** 0.5 if d2 > 0 else nan}

    def summary(self, name: str = "tensor"):
        """A rich Table with this tensor's headline figures (see ``bitkernels.stats.summary``)."""
        return summary({name: self})

    # ---- housekeeping --------------------------------------------------------------------
    def to(self, device: torch.device | str) -> BitStats:
        """A copy on ``device``: always a copy, so a snapshot survives a later reset_()."""
        return BitStats(self.format, counters=self.counters.to(device, copy=True),
                        sums=self.sums.to(device, copy=True))

    def cpu(self) -> BitStats:
        """A copy on the CPU (syncs with the device)."""
        return self.to("cpu")

    def clone(self) -> BitStats:
        return BitStats(self.format, counters=self.counters.clone(), sums=self.sums.clone())

    def reset_(self) -> BitStats:
        self.counters.zero_()
        self.sums.zero_()
        return self

    def all_reduce_(self, group=None) -> BitStats:
        """Combines the statistics of every rank of torch.distributed's process group `group`
        (the default group when None), in place, on every rank: counters and sums are summed,
        except ``steps``, which takes the maximum. Shards of one tensor (FSDP2) then add up to
        the whole tensor; replicas (DDP) count each element once per rank, which leaves every
        fraction as it was. For an optimizer's live views use bit_stats(reduce=True), which
        reduces copies (reducing the live counters would count the other ranks again at the
        next reduction)."""
        reduce_tables_(self.counters, self.sums, group)
        return self

    def merge_(self, other: BitStats) -> BitStats:
        """Adds other's counters into self (other is moved to self's device if needed)."""
        if not isinstance(other, BitStats):
            raise TypeError(f"can only merge a BitStats, got {type(other).__name__}")
        if other.format != self.format:
            raise TypeError(f"cannot merge {other.format.name} statistics into "
                            f"{self.format.name} statistics: bit positions differ")
        self.counters += other.counters.to(self.device)
        self.sums += other.sums.to(self.device)
        return self

    def __iadd__(self, other: BitStats) -> BitStats:
        return self.merge_(other)

    def __add__(self, other: BitStats) -> BitStats:
        return self.clone().merge_(other)

    def equal(self, other: BitStats) -> bool:
        """Same format, identical counters and identical sums (exact)."""
        return (self.format == other.format
                and torch.equal(self.counters.cpu(), other.counters.cpu())
                and torch.equal(self.sums.cpu(), other.sums.cpu()))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (JSON-ready); from_dict() reverses it."""
        counters = self.counters.tolist()
        sums = self.sums.tolist()
        out: dict[str, Any] = {"dtype": str(self.dtype).removeprefix("torch.")}
        out["flips"] = counters[Layout.FLIPS:Layout.FLIPS + self.width]
        out.update({name: counters[slot] for name, slot in _SCALAR_COUNTERS.items()})
        out["depth"] = counters[Layout.DEPTH:Layout.DEPTH + Layout.DEPTH_BINS]
        out.update({name: sums[slot] for name, slot in _SUMS.items()})
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], device: torch.device | str = "cpu") -> BitStats:
        dtype = getattr(torch, data["dtype"], None)
        stats = cls(format_of(dtype, "data['dtype']"), device)
        counters = [0] * Layout.NUM_COUNTERS
        counters[Layout.FLIPS:Layout.FLIPS + stats.width] = data["flips"]
        for name, slot in _SCALAR_COUNTERS.items():
            counters[slot] = data[name]
        counters[Layout.DEPTH:Layout.DEPTH + Layout.DEPTH_BINS] = data["depth"]
        stats.counters.copy_(torch.tensor(counters, dtype=torch.int64))
        stats.sums.copy_(torch.tensor([data[name] for name in _SUMS], dtype=torch.float64))
        return stats

    def __repr__(self) -> str:
        d = self.to_dict()
        return (f"BitStats({self.format.name}, steps={d['steps']}, numel={d['numel']}, "
                f"changed={d['changed']}, lost={d['lost']}, popcount={sum(d['flips'])}, "
                f"device={self.device})")


def reduce_tables_(counters: torch.Tensor, sums: torch.Tensor, group=None) -> None:
    """all_reduce of statistics buffers (one row or a table of rows): sums, and the maximum of
    the steps column. Two collectives plus one for the steps."""
    import torch.distributed as dist

    steps = counters[..., Layout.STEPS].clone()
    dist.all_reduce(steps, op=dist.ReduceOp.MAX, group=group)
    dist.all_reduce(counters, op=dist.ReduceOp.SUM, group=group)
    dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=group)
    counters[..., Layout.STEPS] = steps


def _view_property(buffer: str, slot: int, doc: str) -> property:
    return property(lambda self: getattr(self, buffer)[slot], doc=doc)


# changed, lost, zero, nonfinite, numel, steps and the four sums, as 0-d views of the buffers.
for _name, _slot in _SCALAR_COUNTERS.items():
    setattr(BitStats, _name, _view_property("counters", _slot, f"0-d int64 view: {_name}"))
for _name, _slot in _SUMS.items():
    setattr(BitStats, _name, _view_property("sums", _slot, f"0-d float64 view: {_name}"))


def summary(stats: dict[str, BitStats], title: str = "bit statistics"):
    """A compact rich Table: one row per tensor and one "all <dtype>" row merging the tensors of
    each dtype that has several. Columns: dtype, elements per step, steps, changed, lost (of
    intended updates), flips per element per step, the regime fractions, realized / intended
    update RMS."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("tensor", "dtype", "numel/step", "steps", "changed", "lost", "flips/elem",
                   "underflow", "effective", "saturation", "realized/intended"):
        table.add_column(column, justify="left" if column == "tensor" else "right")
    rows = dict(stats)
    for fmt in dict.fromkeys(s.format for s in stats.values()):
        same = [s for s in stats.values() if s.format == fmt]
        if len(same) > 1:  # bit positions differ between formats: one merged row per format
            rows[f"all {fmt.name}"] = sum((s.cpu() for s in same), BitStats(fmt))
    for name, s in rows.items():
        s = s.cpu()
        steps = int(s.steps)
        regimes = s.regime_fractions()
        table.add_row(name, s.format.name, f"{int(s.numel) // max(steps, 1):,}", str(steps),
                      f"{float(s.changed_frac()):.2%}", f"{float(s.lost_frac()):.2%}",
                      f"{float(s.flips_per_element()):.3f}",
                      *(f"{regimes[k]:.1%}" for k in ("underflow", "effective", "saturation")),
                      f"{s.rms_ratios()['realized/intended']:.3f}")
    return table
