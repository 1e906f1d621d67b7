"""Machinery shared by the fused optimizers: argument checks before anything is written, lazy
state, one kernel launch per (parameter group, device, dtype), and the statistics tables."""

from __future__ import annotations

import operator
from collections import defaultdict
from typing import Any, Callable, Iterator

import torch

from .. import backends
from ..backends import _ext
from ..formats import FORMATS
from ..rules import stream_key
from ..stats import BitStats, Layout, reduce_tables_

ROUNDINGS = ("nearest", "stochastic")


def local(x: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (parameters under FSDP2's fully_shard or tensor
    parallelism, and the states made like them), the tensor itself otherwise: the kernels step
    each rank's shard, and its statistics describe that shard until reduced."""
    to_local = getattr(x, "to_local", None)
    return to_local() if to_local is not None else x


def advance_steps(steps: list[torch.Tensor]) -> list[float]:
    """Adds 1 to each parameter's ``step`` tensor and returns the new counts. One call into
    bitkernels._C where it is built: torch._foreach_add_ on CPU scalars runs an add_ per tensor,
    and float() reads each back, ~1.2 us a tensor together."""
    if steps and _ext.load_cpu() is None and not torch.compiler.is_compiling():
        counts = _ext.cpu_module().advance_steps(steps)
        if counts is not None:
            return counts
    torch._foreach_add_(steps, 1)
    return [float(step) for step in steps]


def check_hyper(name: str, value: float, low: float = 0.0, high: float | None = None,
                high_open: bool = True) -> float:
    """value as a float, or a ValueError naming the hyper-parameter (torch.optim's wording)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    bad = not value >= low or (high is not None and (value >= high if high_open else value > high))
    if bad:
        interval = f"[{low}, {high})" if high is not None and high_open else (
            f"[{low}, {high}]" if high is not None else f">= {low}")
        raise ValueError(f"Invalid {name} value: {value} (must be in {interval})")
    return value


def check_betas(betas) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return (check_hyper("beta parameter at index 0", betas[0], 0.0, 1.0),
            check_hyper("beta parameter at index 1", betas[1], 0.0, 1.0))


def reject_unsupported(**flags: bool) -> None:
    for name, value in flags.items():
        if value:
            raise ValueError(f"{name}=True is not supported by bitkernels optimizers")


class BitOptimizer(torch.optim.Optimizer):
    """A torch.optim.Optimizer whose step is one fused kernel per (group, device, dtype) that
    applies the update and accumulates bit statistics (see BitStats) for every parameter.

    Keyword-only options common to all:
      track_bits: accumulate statistics (True) or compile them out of the kernel (False). The
        attribute of that name may change between steps, to count a sample of them.
      rounding: "nearest" (as torch) or "stochastic" for bf16/fp16 parameters.
      kahan: keep a Kahan compensation buffer (parameter dtype) for bf16/fp16 parameters.
      seed: seed of the stochastic-rounding streams; with the step count it fixes every bit.
      backend: "auto", "cpu", "cuda", "triton" or "reference" (see bitkernels.backends).
    """

    # GradScaler then hands grad_scale / found_inf over instead of unscaling itself.
    _step_supports_amp_scaling = True
    # Names of the fp32 state tensors a parameter gets (subclasses).
    _state_buffers: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict[str, Any], *, track_bits: bool = True,
                 rounding: str = "nearest", kahan: bool = False, seed: int = 0,
                 backend: str = "auto"):
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        if not isinstance(backend, str) or (backend != "auto" and backend not in backends.NAMES):
            raise ValueError(f"backend must be 'auto' or one of {backends.NAMES}, got {backend!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.track_bits = bool(track_bits)
        self.rounding = rounding
        self.kahan = bool(kahan)
        self.seed = seed
        self.backend = backend
        # (group index, device) -> (counters [params in group, NUM_COUNTERS], sums [.., NUM_SUMS])
        self._stat_tables: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        # id(parameter) -> what its state was last checked as (see _plan)
        self._checked_states: dict[int, tuple] = {}
        super().__init__(params, defaults)

    # torch.optim pickles defaults, state and param_groups only (torch.save(optimizer),
    # copy.deepcopy): the options and the statistics go along; the state-check memo does not.
    _PICKLED = ("track_bits", "rounding", "kahan", "seed", "backend", "_stat_tables")

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update({key: self.__dict__[key] for key in self._PICKLED})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._checked_states = {}

    # ---- subclasses ------------------------------------------------------------------------------
    def _launch(self, impl, group: dict[str, Any], bucket: list[tuple[int, torch.Tensor]],
                common: dict[str, Any]) -> None:
        """Calls the backend's step op for one bucket (same device and dtype) of a group."""
        raise NotImplementedError

    # ---- the step --------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        # Everything is checked before anything is written: a bad parameter anywhere leaves
        # every parameter and state as it was.
        plans = [self._plan(index, group) for index, group in enumerate(self.param_groups)]
        if found_inf is not None and float(found_inf) != 0.0:
            return loss  # AMP found inf/NaN gradients: nothing changes, steps do not advance
        if grad_scale is not None:
            grad_scale = grad_scale.reshape(1).float()
        offset = 0
        for (index, group), plan in zip(enumerate(self.param_groups), plans):
            self._run(index, group, plan, offset, grad_scale)
            offset += len(group["params"])
        return loss

    def _plan(self, index: int, group: dict[str, Any]):
        """The group's parameters that have gradients, checked, bucketed by (device, dtype)."""
        buckets: dict[tuple[torch.device, torch.dtype], list[tuple[int, torch.Tensor]]] = (
            defaultdict(list))
        checked = self._checked_states
        for position, p in enumerate(group["params"]):
            grad = p.grad
            if grad is None:
                continue
            dtype, device, shape = p.dtype, p.device, p.shape
            if (grad.layout is not torch.strided or dtype not in FORMATS or grad.dtype is not dtype
                    or grad.shape != shape or grad.device != device):
                self._reject_grad(self._name(index, position, group), p, grad)
            state = self.state.get(p)
            if state:
                # A parameter's state is checked again only when it or the parameter changed:
                # checking every tensor at every step cost more than the step itself on models
                # of many small tensors. The memo holds the state objects themselves (identity,
                # not equality), so an assignment or load_state_dict is seen; so is a parameter
                # whose .data was replaced (its shape, dtype or device).
                seen = checked.get(id(p))
                if (seen is None or seen[0] != shape or seen[1] is not dtype or seen[2] != device
                        or len(seen) != 3 + len(state)
                        or not all(map(operator.is_, seen[3:], state.values()))):
                    self._check_state(index, position, group, p, state)
                    checked[id(p)] = (shape, dtype, device, *state.values())
            buckets[(device, dtype)].append((position, p))
        devices = sorted({str(device) for device, _ in buckets})
        if len(devices) > 1:
            raise ValueError(f"param group {index} has parameters on {' and '.join(devices)}: "
                             "one step runs on one device; put them in separate param groups")
        for device, _ in buckets:
            backends.resolve(self.backend, device)  # raises if no backend can run there
        return buckets

    @staticmethod
    def _reject_grad(name: str, p: torch.Tensor, grad: torch.Tensor) -> None:
        if grad.layout != torch.strided:
            raise TypeError(f"parameter {name}: sparse gradients are not supported")
        if p.dtype not in FORMATS:
            raise TypeError(f"parameter {name} has dtype {p.dtype}; bitkernels optimizers "
                            "support float32, bfloat16 and float16 parameters")
        if grad.dtype != p.dtype:
            raise TypeError(f"parameter {name}: gradient dtype {grad.dtype} differs from "
                            f"the parameter's {p.dtype}")
        if grad.shape != p.shape:
            raise ValueError(f"parameter {name}: gradient shape {tuple(grad.shape)} differs "
                             f"from the parameter's {tuple(p.shape)}")
        raise ValueError(f"parameter {name}: gradient is on {grad.device}, the parameter "
                         f"on {p.device}")

    # State tensors of a parameter: fp32 with the parameter's shape, and the Kahan buffer in the
    # parameter's dtype. A state_dict of another model (or of another parameter order) would
    # otherwise reach the kernels with the wrong sizes.
    _FP32_STATES = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")

    def _check_state(self, index: int, position: int, group: dict[str, Any], p: torch.Tensor,
                     state: dict[str, Any]) -> None:
        """Raises, naming the parameter, if one of its states could not be stepped with it."""
        name = self._name(index, position, group)
        expected = {key: torch.float32 for key in self._FP32_STATES}
        expected["kahan_comp"] = p.dtype
        for key, dtype in expected.items():
            value = state.get(key)
            if value is None:
                continue
            where = f"parameter {name}: state {key!r}"
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{where} is a {type(value).__name__}, not a tensor")
            if value.shape != p.shape:
                raise ValueError(f"{where} has shape {tuple(value.shape)}, the parameter "
                                 f"{tuple(p.shape)} (was a state_dict of another model or "
                                 "parameter order loaded?)")
            if value.dtype != dtype:
                raise TypeError(f"{where} has dtype {value.dtype}; it must be {dtype}")
            if value.device != p.device:
                raise ValueError(f"{where} is on {value.device}, the parameter on {p.device}")
            if not local(value).is_contiguous():
                raise ValueError(f"{where} is not contiguous")
        step = state.get("step")
        if step is not None and (not isinstance(step, (torch.Tensor, int, float))
                                 or (isinstance(step, torch.Tensor) and step.numel() != 1)):
            raise ValueError(f"parameter {name}: state 'step' must be a scalar, got {step!r}")

    def _run(self, index, group, plan, offset, grad_scale) -> None:
        stochastic = self.rounding == "stochastic"
        for (device, dtype), bucket in plan.items():
            _, impl = backends.resolve(self.backend, device)
            states = [self.state[p] for _, p in bucket]
            for (_, p), state in zip(bucket, states):
                self._init_state(p, state, group)
            # One call for the whole bucket: a `+= 1` per parameter was the largest per-tensor
            # cost of a step.
            steps = advance_steps([state["step"] for state in states])
            kahan = self.kahan and FORMATS[dtype].width == 16
            counters = sums = None
            if self.track_bits:
                counters, sums = self._table(index, device, len(group["params"]))
            shards = [local(p) for _, p in bucket]
            params = [x if x.is_contiguous() else x.contiguous() for x in shards]
            common = dict(
                params=params,
                grads=[local(p.grad).contiguous() for _, p in bucket],
                kahan_comps=([local(state["kahan_comp"]) for state in states] if kahan
                             else []),
                counters=counters,
                sums=sums,
                stat_rows=[position for position, _ in bucket],
                # The keys are read only by stochastic rounding, and cost a few microseconds each.
                rng_keys=([stream_key(self.seed, offset + position, int(step))
                           for (position, _), step in zip(bucket, steps)] if stochastic
                          else [0] * len(bucket)),
                grad_scale=None if grad_scale is None else grad_scale.to(device),
                found_inf=None,
                stochastic=stochastic,
                states=states,
                steps=steps,  # each parameter's step count, this step included
            )
            self._launch(impl, group, bucket, common)
            for shard, written in zip(shards, params):
                if written is not shard:  # a non-contiguous parameter was stepped as a copy
                    shard.copy_(written)

    def _init_state(self, p: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        step = state.get("step")
        if not isinstance(step, torch.Tensor):
            # As torch.optim: a float32 scalar on the CPU, read on the host without a sync (a
            # number from an old checkpoint becomes one, so that the bucket's steps are tensors).
            state["step"] = torch.tensor(0.0 if step is None else float(step), dtype=torch.float32)
        for key in self._state_buffers:
            if key not in state:
                state[key] = torch.zeros_like(p, dtype=torch.float32,
                                              memory_format=torch.contiguous_format)
        if self.kahan and FORMATS[p.dtype].width == 16 and "kahan_comp" not in state:
            state["kahan_comp"] = torch.zeros_like(p, memory_format=torch.contiguous_format)

    # ---- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """torch.optim's state_dict, keys and shapes as the matching torch.optim optimizer's (so
        torch loads it), plus a "bitkernels" entry torch ignores: the statistics tables and the
        seed. Stochastic-rounding streams need nothing else: they are keyed by (seed, tensor,
        step), and each parameter's ``step`` is in its state."""
        state_dict = super().state_dict()
        state_dict["bitkernels"] = {
            "seed": self.seed,
            "bit_stats": [(index, str(device), counters.cpu().clone(), sums.cpu().clone())
                          for (index, device), (counters, sums) in self._stat_tables.items()],
        }
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch.optim's load_state_dict (a torch.optim checkpoint loads too), except that the
        optimizer states stay fp32: torch casts floating state to the parameter's dtype, which
        would round bf16/fp16 parameters' fp32 moments to 8 or 11 bits. They are taken from the
        checkpoint before that cast (a torch checkpoint's bf16 states are widened exactly)."""
        exact = {pid: {key: value for key, value in state.items()
                       if key not in ("step", "kahan_comp") and isinstance(value, torch.Tensor)
                       and value.is_floating_point()}
                 for pid, state in state_dict["state"].items()}
        self._checked_states = {}  # it holds the replaced states: let them go now
        super().load_state_dict(state_dict)
        for saved, group in zip(state_dict["param_groups"], self.param_groups):
            for pid, p in zip(saved["params"], group["params"]):
                for key, value in exact.get(pid, {}).items():
                    self.state[p][key] = value.to(device=p.device, dtype=torch.float32,
                                                  copy=True).contiguous()
        extra = state_dict.get("bitkernels")
        if extra is not None:
            self.seed = int(extra["seed"])
            self._stat_tables = {}
            for index, device, counters, sums in extra["bit_stats"]:
                devices = [p.device for p in self.param_groups[index]["params"]]
                device = torch.device(device)
                if devices and device not in devices:  # e.g. a GPU checkpoint on a CPU
                    device = devices[0]
                self._stat_tables[(index, device)] = (counters.to(device, copy=True),
                                                      sums.to(device, copy=True))

    # ---- statistics ------------------------------------------------------------------------------
    def _table(self, index: int, device: torch.device, rows: int):
        key = (index, device)
        table = self._stat_tables.get(key)
        if table is None or table[0].shape[0] < rows:
            counters = torch.zeros(rows, Layout.NUM_COUNTERS, dtype=torch.int64, device=device)
            sums = torch.zeros(rows, Layout.NUM_SUMS, dtype=torch.float64, device=device)
            if table is not None:  # the group grew: keep what was counted
                counters[:table[0].shape[0]] = table[0]
                sums[:table[1].shape[0]] = table[1]
            table = self._stat_tables[key] = (counters, sums)
        return table

    @staticmethod
    def _name(index: int, position: int, group: dict[str, Any]) -> str:
        names = group.get("param_names")
        return names[position] if names else f"g{index}.{position}"

    def _locate(self, p: torch.Tensor) -> tuple[int, int]:
        for index, group in enumerate(self.param_groups):
            for position, q in enumerate(group["params"]):
                if q is p:
                    return index, position
        raise ValueError("the tensor is not a parameter of this optimizer")

    def _stats_of(self, index: int, position: int, p: torch.Tensor,
                  tables: dict | None = None) -> BitStats:
        table = (self._stat_tables if tables is None else tables).get((index, p.device))
        if table is None or position >= table[0].shape[0]:
            return BitStats(p.dtype, p.device)
        return BitStats(p.dtype, counters=table[0][position], sums=table[1][position])

    def _parameters(self) -> Iterator[tuple[str, int, int, torch.Tensor]]:
        for index, group in enumerate(self.param_groups):
            for position, p in enumerate(group["params"]):
                yield self._name(index, position, group), index, position, p

    def bit_stats(self, p: torch.Tensor | None = None, *, reduce: bool = False, group=None):
        """The accumulated BitStats of parameter p (live views: they keep counting), or, without
        p, a dict of every parameter's, keyed by name (named_parameters() names when the
        optimizer was given them, else "g{group}.{index}"). Under torch.distributed, each rank
        counts its own elements (a DDP replica, an FSDP2 shard); reduce=True returns copies
        combined over `group`'s ranks (BitStats.all_reduce_): whole-model figures. It is a
        collective: every rank must call it."""
        tables = self._stat_tables
        if reduce:
            tables = {key: (counters.clone(), sums.clone())
                      for key, (counters, sums) in self._stat_tables.items()}
            for counters, sums in tables.values():
                reduce_tables_(counters, sums, group)
        if p is not None:
            return self._stats_of(*self._locate(p), p, tables)
        return {name: self._stats_of(index, position, q, tables)
                for name, index, position, q in self._parameters()}

    def reset_bit_stats(self) -> None:
        for counters, sums in self._stat_tables.values():
            counters.zero_()
            sums.zero_()
