"""Bit statistics beside the usual scalars in TensorBoard (needs the tensorboard package, the
`tensorboard` extra)."""

from __future__ import annotations

import math

from ..stats import BitStats


def log_bit_stats(writer, stats: BitStats | dict[str, BitStats], step: int,
                  prefix: str = "bits") -> None:
    """Writes one BitStats, or a dict of them (opt.bit_stats()), at global step `step` of a
    torch.utils.tensorboard.SummaryWriter: per tensor the scalars lost_frac, changed_frac,
    flips_per_element, the regime fractions and the intended/realized update RMS ratios, and
    the update-depth histogram (n = floor(log2(|update| / ulp(weight)))) as a histogram.
    Counters accumulate until reset: log, then opt.reset_bit_stats(), for per-interval
    figures."""
    items = {"": stats} if isinstance(stats, BitStats) else stats
    for name, s in items.items():
        tag = f"{prefix}/{name}" if name else prefix
        scalars = {"lost_frac": float(s.lost_frac()), "changed_frac": float(s.changed_frac()),
                   "flips_per_element": float(s.flips_per_element())}
        scalars.update({f"regime/{k}": v for k, v in s.regime_fractions().items()})
        scalars.update({f"update_rms_ratio/{k}": v for k, v in s.rms_ratios().items()})
        for key, value in scalars.items():
            if math.isfinite(value):
                writer.add_scalar(f"{tag}/{key}", value, step)
        counts = s.depth.double().cpu()
        total = float(counts.sum())
        if total > 0:
            n = BitStats.depth_values().double()
            writer.add_histogram_raw(
                f"{tag}/update_depth", min=float(n[counts > 0].min()),
                max=float(n[counts > 0].max()), num=int(total),
                sum=float((n * counts).sum()), sum_squares=float((n * n * counts).sum()),
                bucket_limits=(n + 0.5).tolist(), bucket_counts=counts.tolist(),
                global_step=step)
