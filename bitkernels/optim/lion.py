"""Lion (Chen et al. 2023) fused with the bit statistics."""

from __future__ import annotations

from .base import BitOptimizer, check_betas, check_hyper, local


class Lion(BitOptimizer):
    """Lion: p -= lr * (sign(beta1 * m + (1 - beta1) * g) + weight_decay * p), then
    m = beta2 * m + (1 - beta2) * g. State per parameter: ``exp_avg`` (fp32), ``step``."""

    _state_buffers = ("exp_avg",)

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0,
                 *, maximize: bool = False, **options):
        lr = check_hyper("learning rate", lr)
        weight_decay = check_hyper("weight_decay", weight_decay)
        betas = check_betas(betas)
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=bool(maximize))
        super().__init__(params, defaults, **options)

    def _launch(self, impl, group, bucket, common):
        beta1, beta2 = group["betas"]
        impl.lion_step(common["params"], common["grads"],
                       [local(state["exp_avg"]) for state in common["states"]],
                       common["kahan_comps"],
                       common["counters"], common["sums"], common["stat_rows"],
                       common["rng_keys"], common["grad_scale"], common["found_inf"],
                       group["lr"], beta1, beta2, group["weight_decay"], group["maximize"],
                       common["stochastic"])
