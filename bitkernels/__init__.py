"""bitkernels: fused optimizer kernels that measure what each step does to the stored bits.

Public names: bitflip_stats, BitStats, formats, backends.
"""

from . import backends, formats
from .ops import bitflip_stats
from .stats import BitStats

__all__ = ["bitflip_stats", "BitStats", "formats", "backends"]
__version__ = "0.1.0"
