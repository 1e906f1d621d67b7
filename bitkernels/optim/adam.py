"""Adam and AdamW fused with the bit statistics (torch.optim semantics)."""

from __future__ import annotations

import torch

from ..rules import adam_bias_correction2_sqrt, adam_step_size
from .base import BitOptimizer, check_betas, check_hyper, local, reject_unsupported


class Adam(BitOptimizer):
    """torch.optim.Adam, same arguments and defaults, plus the BitOptimizer options.

    State per parameter (as torch.optim): ``step``, ``exp_avg``, ``exp_avg_sq`` and with amsgrad
    ``max_exp_avg_sq``, all fp32 whatever the parameter dtype; ``kahan_comp`` when kahan=True.
    """

    _state_buffers = ("exp_avg", "exp_avg_sq")
    _decoupled_default = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool | None = None, **options):
        lr = check_hyper("learning rate", lr)
        eps = check_hyper("epsilon", eps)
        weight_decay = check_hyper("weight_decay", weight_decay)
        betas = check_betas(betas)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_default
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=bool(amsgrad), maximize=bool(maximize), foreach=foreach,
                        capturable=False, differentiable=False, fused=fused,
                        decoupled_weight_decay=bool(decoupled_weight_decay))
        super().__init__(params, defaults, **options)

    def _init_state(self, p, state, group):
        super()._init_state(p, state, group)
        # amsgrad may be switched on in a group after the first step
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(state["exp_avg_sq"])

    def _launch(self, impl, group, bucket, common):
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        states = common["states"]
        steps = common["steps"]
        # The scalars once per distinct step count (usually one per bucket).
        scalars = {t: (adam_step_size(lr, beta1, t), adam_bias_correction2_sqrt(beta2, t))
                   for t in set(steps)}
        per_tensor = [scalars[t] for t in steps]
        impl.adam_step(common["params"], common["grads"], [local(s["exp_avg"]) for s in states],
                       [local(s["exp_avg_sq"]) for s in states],
                       [local(s["max_exp_avg_sq"]) for s in states] if group["amsgrad"] else [],
                       common["kahan_comps"], common["counters"], common["sums"],
                       common["stat_rows"], common["rng_keys"],
                       [step_size for step_size, _ in per_tensor],
                       [correction for _, correction in per_tensor],
                       common["grad_scale"], common["found_inf"], lr, beta1, beta2, group["eps"],
                       group["weight_decay"], group["decoupled_weight_decay"], group["amsgrad"],
                       group["maximize"], common["stochastic"])


class AdamW(Adam):
    """torch.optim.AdamW (decoupled weight decay, default 1e-2), same arguments and defaults,
    plus the BitOptimizer options."""

    _decoupled_default = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, **kwargs):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kwargs)
