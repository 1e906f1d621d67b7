"""The compiled backends, cpu (bitkernels._C) and cuda (bitkernels._C_cuda): thin calls into the
torch ops, which dispatch on the tensors' device. Every function takes the op's arguments."""

from __future__ import annotations

import torch


def bitflip_stats(old, new, update, counters, sums) -> None:
    torch.ops.bitkernels.bitflip_stats(old, new, update, counters, sums)


def sgd_step(*args) -> None:
    torch.ops.bitkernels.sgd_step(*args)


def adam_step(*args) -> None:
    torch.ops.bitkernels.adam_step(*args)


def lion_step(*args) -> None:
    torch.ops.bitkernels.lion_step(*args)
