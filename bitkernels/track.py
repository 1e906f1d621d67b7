"""bitkernels.track: bit statistics for any torch optimizer, the slower path.

For users who cannot switch to bitkernels.optim: the wrapper copies every parameter that has a
gradient before the wrapped optimizer steps, then counts what the step did to the stored bits
with ``bitflip_stats``. That costs a copy of the parameters and a second pass over them per
step (the fused optimizers count in the same pass as the update, with no copy), and it sees
only old and new bits: ``flips``, ``changed``, ``numel`` and ``steps``. The intended update is
unknown outside the optimizer, so ``lost``, ``zero``, the depth histogram and the sums stay 0.
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
    API insists on a torch.optim.Optimizer instance)."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, backend: str = "auto",
                 named_parameters: Iterable[tuple[str, torch.Tensor]] | None = None):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.backend = backend
        self._given_names = ({id(p): name for name, p in named_parameters}
                             if named_parameters else {})
        self._stats: dict[int, BitStats] = {}

    def _names(self) -> dict[int, str]:
        """Parameter id -> name, from the current param groups (add_param_group included)."""
        return {id(p): self._given_names.get(id(p), f"g{g}.{i}")
                for g, group in enumerate(self.optimizer.param_groups)
                for i, p in enumerate(group["params"])}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    def step(self, closure: Callable[[], Any] | None = None):
        params = [p for group in self.optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        old = [p.detach().clone() for p in params]
        loss = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        for p, before in zip(params, old):
            stats = self._stats.get(id(p))
            if stats is None or stats.dtype != p.dtype:
                stats = self._stats[id(p)] = BitStats(p.dtype, p.device)
            bitflip_stats(before, p.detach(), backend=self.backend, out=stats)
        return loss

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
          named_parameters: Iterable[tuple[str, torch.Tensor]] | None = None
          ) -> TrackedOptimizer:
    """Wrap any torch optimizer so that each step also counts its bit flips (see the module
    docstring for what this path can and cannot measure, and why it is slower)."""
    return TrackedOptimizer(optimizer, backend=backend, named_parameters=named_parameters)
