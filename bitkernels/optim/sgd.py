"""SGD with momentum, fused with the bit statistics (torch.optim.SGD semantics)."""

from __future__ import annotations

import torch

from .base import BitOptimizer, check_hyper, local, reject_unsupported


class SGD(BitOptimizer):
    """torch.optim.SGD, same arguments and defaults, plus the BitOptimizer options.

    State per parameter: ``momentum_buffer`` (fp32, created at the first step when momentum is
    nonzero), ``step`` (for stochastic rounding), ``kahan_comp`` when kahan=True.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None, **options):
        lr = check_hyper("learning rate", lr)
        momentum = check_hyper("momentum", momentum)
        weight_decay = check_hyper("weight_decay", weight_decay)
        dampening = float(dampening)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        reject_unsupported(differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=bool(nesterov), maximize=bool(maximize), foreach=foreach,
                        differentiable=False, fused=fused)
        super().__init__(params, defaults, **options)

    def _launch(self, impl, group, bucket, common):
        has_momentum = group["momentum"] != 0
        buffers, first = [], []
        if has_momentum:
            for (_, p), state in zip(bucket, common["states"]):
                first.append(state.get("momentum_buffer") is None)
                if first[-1]:
                    state["momentum_buffer"] = torch.zeros_like(
                        p, dtype=torch.float32, memory_format=torch.contiguous_format)
                buffers.append(local(state["momentum_buffer"]))
        else:
            first = [False] * len(bucket)
        impl.sgd_step(common["params"], common["grads"], buffers, common["kahan_comps"],
                      common["counters"], common["sums"], common["stat_rows"], common["rng_keys"],
                      first, common["grad_scale"], common["found_inf"], group["lr"],
                      group["momentum"], group["dampening"], group["weight_decay"],
                      group["nesterov"], group["maximize"], common["stochastic"])
