"""bitkernels: fused optimizer kernels that measure what each step does to the stored bits.

Public names: bitflip_stats, BitStats, track, optim (SGD, Adam, AdamW, Lion), formats,
theory, backends.
"""

from . import backends, formats, optim, theory
from .ops import bitflip_stats
from .stats import BitStats
from .track import track

__all__ = ["bitflip_stats", "BitStats", "track", "formats", "theory", "backends", "optim"]
__version__ = "0.1.0"
