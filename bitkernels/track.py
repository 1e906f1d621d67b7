"""bitkernels.track: bit statistics for any torch optimizer, the slower path.

For users who cannot switch to bitkernels.optim: the wrapper copies every parameter that has a
gradient before the wrapped optimizer steps, then counts what the step did to the stored bits
with ``bitflip_stats``. That costs a copy of the parameters and a second pass over them per
step (the fused optimizers count in the same pass as the update, with no copy), and it sees
only old and new bits: ``flips``, ``changed``, ``numel`` and ``steps``. The intended update is
unknown outside the optimizer, so ``lost``, ``zero``, the depth histogram and the sums stay 0.

The copies of CPU parameters are kept from step to step (``keep_copies``): a fresh copy of a
large tensor is fresh memory from the operating system every step, and its page faults cost
more than the copy (16M fp32 elements: 21 ms against 5 ms) and twice the optimizer's own step.
GPU copies come from torch's caching allocator, so they are made per step and their memory
serves the rest of the training step in between.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from .ops import bitflip_stats
from .stats import BitStats

__all__ = ["track", "TrackedOptimizer"]


class TrackedOptimizer:
    """Wraps ``optimizer``; everything but ``step``, ``bit_stats`` and ``reset_bit_stats`` is
    the wrapped optimizer's (param_groups, state_dict, zero_grad, ...), so it goes wherever the
    optimizer went, lr schedulers and GradScaler included (pass ``tracked.optimizer`` where an
    API insists on a torch.optim.Optimizer instance).

    ``track_bits`` may change between steps, as the fused optimizers' (bitkernels.optim): a step
    with it False is the wrapped optimizer's step alone, without the copy and the count."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, backend: str = "auto",
                 named_parameters: Iterable[tuple[str, torch.Tensor]] | None = None,
                 keep_copies: bool | None = None, track_bits: bool = True):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        if keep_copies is not None and not isinstance(keep_copies, bool):
            raise TypeError(f"keep_copies must be a bool or None, got {type(keep_copies).__name__}")
        self.optimizer = optimizer
        self.backend = backend
        self.keep_copies = keep_copies
        self.track_bits = bool(track_bits)
        self._given_names = ({id(p): name for name, p in named_parameters}
                             if named_parameters else {})
        self._stats: dict[int, BitStats] = {}
        self._copies: dict[int, torch.Tensor] = {}  # kept copies, by parameter id

    def _names(self) -> dict[int, str]:
        """Parameter id -> name, from the current param groups (add_param_group included)."""
        return {id(p): self._given_names.get(id(p), f"g{g}.{i}")
                for g, group in enumerate(self.optimizer.param_groups)
                for i, p in enumerate(group["params"])}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    def step(self, closure: Callable[[], Any] | None = None):
        if not self.track_bits:
            return self._wrapped_step(closure)
        params = [p for group in self.optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        old = self._copy_all(params)
        loss = self._wrapped_step(closure)
        for p, before in zip(params, old):
            stats = self._stats.get(id(p))
            if stats is None or stats.dtype != p.dtype:
                stats = self._stats[id(p)] = BitStats(p.dtype, p.device)
            bitflip_stats(before, p.detach(), backend=self.backend, out=stats)
        return loss

    def _wrapped_step(self, closure: Callable[[], Any] | None):
        return self.optimizer.step(closure) if closure is not None else self.optimizer.step()

    def _keeps_copy_of(self, p: torch.Tensor) -> bool:
        return self.keep_copies if self.keep_copies is not None else p.device.type == "cpu"

    def _copy_all(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """The parameters' values before the step: kept buffers refreshed in place, or clones.
        Copies of parameters no longer stepped are let go."""
        kept: dict[int, torch.Tensor] = {}
        copies = []
        for p in params:
            if not self._keeps_copy_of(p):
                copies.append(p.detach().clone())
                continue
            copy = self._copies.get(id(p))
            if (copy is None or copy.shape != p.shape or copy.stride() != p.stride()
                    or copy.dtype != p.dtype or copy.device != p.device):
                copy = torch.empty_like(p.detach())  # preserve_format: the strides of p
            copies.append(copy.copy_(p.detach()))
            kept[id(p)] = copy
        self._copies = kept
        return copies

    def bit_stats(self, p: torch.Tensor | None = None):
        """BitStats of parameter p, or a dict of every tracked parameter's keyed by name."""
        names = self._names()
        if p is not None:
            if id(p) not in names:
                raise ValueError("p is not a parameter of the tracked optimizer")
            return self._stats.get(id(p)) or BitStats(p.dtype, p.device)
        return {name: self._stats[key] for key, name in names.items() if key in self._stats}

    def reset_bit_stats(self) -> None:
        for stats in self._stats.values():
            stats.reset_()

    def __repr__(self) -> str:
        return f"track({self.optimizer!r})"


def track(optimizer: torch.optim.Optimizer, *, backend: str = "auto",
          named_parameters: Iterable[tuple[str, torch.Tensor]] | None = None,
          keep_copies: bool | None = None, track_bits: bool = True) -> TrackedOptimizer:
    """Wrap any torch optimizer so that each step also counts its bit flips (see the module
    docstring for what this path can and cannot measure, and why it is slower).

    keep_copies: keep each parameter's pre-step copy between steps (one more parameter-sized
    buffer held, like an optimizer state) instead of allocating it per step. None (default):
    kept for CPU parameters, where fresh allocations cost page faults, not for GPU ones.
    track_bits: count the steps (True) or only take them; the attribute of that name may change
    between steps, to count a sample of them."""
    return TrackedOptimizer(optimizer, backend=backend, named_parameters=named_parameters,
                            keep_copies=keep_copies, track_bits=track_bits)
