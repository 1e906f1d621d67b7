"""The compiled backends, cpu (bitkernels._C) and cuda (bitkernels._C_cuda): thin calls into the
torch ops, which dispatch on the tensors' device."""

from __future__ import annotations

import torch


def bitflip_stats(old: torch.Tensor, new: torch.Tensor, update: torch.Tensor | None,
                  counters: torch.Tensor, sums: torch.Tensor) -> None:
    torch.ops.bitkernels.bitflip_stats(old, new, update, counters, sums)
