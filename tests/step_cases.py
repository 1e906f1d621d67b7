"""Shared helpers for the fused-step tests: a small multi-tensor problem and a driver that runs
steps through any backend's op functions with the same arguments."""

from __future__ import annotations

import itertools

import torch

from bitkernels import backends, rules
from bitkernels.stats import Layout

SIZES = [0, 1, 7, 1000, 4099]

# (name, op, hyper-parameters): every rule option appears at least once.
CONFIGS = [
    ("sgd", dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True,
                 maximize=True)),
    ("adam", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False,
                  amsgrad=False)),
    ("adam", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, decoupled=True,
                  amsgrad=True)),
    ("adam", dict(lr=2e-3, beta1=0.3, beta2=0.99, eps=1e-6, weight_decay=0.05, decoupled=False,
                  amsgrad=False, maximize=True)),
    # AdamW as usually configured: the CPU's kernels without picks (kPlain, kDecay; CONFIGS[3]
    # is the plain Adam without decay).
    ("adam", dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, decoupled=True,
                  amsgrad=False)),
    ("lion", dict(lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0)),
    ("lion", dict(lr=3e-4, beta1=0.95, beta2=0.98, weight_decay=0.1, maximize=True)),
    # SGD with momentum as usually configured: the CPU's kernels without the picks of maximize,
    # decay and Nesterov (kPlain).
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.0, nesterov=False)),
    # Lion with decay, without maximize: the CPU's kernels without the picks (kPlain, kDecay;
    # CONFIGS[7] is the plain Lion without decay).
    ("lion", dict(lr=3e-4, beta1=0.9, beta2=0.99, weight_decay=0.1)),
    # AdamW with beta1 <= 0.5, which torch's lerp computes from the other side: the general
    # kernels.
    ("adam", dict(lr=1e-3, beta1=0.4, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True,
                  amsgrad=False)),
]
CONFIG_IDS = [f"{name}{i}" for i, (name, _) in enumerate(CONFIGS)]


def landing_modes(dtype):
    """(stochastic, kahan) combinations that apply to dtype."""
    if dtype == torch.float32:
        return [(False, False)]
    return list(itertools.product([False, True], [False, True]))


class Problem:
    """Parameters, gradients and states of one step op call, with a stats table."""

    def __init__(self, kind, dtype, sizes=SIZES, seed=0, kahan=False, device="cpu",
                 specials=False):
        g = torch.Generator().manual_seed(seed)
        self.kind, self.dtype = kind, dtype
        self.params, self.grad_seeds = [], []
        for n in sizes:
            p = torch.randn(n, generator=g) * 0.02
            if specials and n > 20:
                p[:7] = torch.tensor([0.0, -0.0, 1e-40, float("inf"), float("nan"), 3e38,
                                      -float("inf")])
            self.params.append(p.to(dtype).to(device))
        nstates = {"sgd": 1, "adam": 3, "lion": 1}[kind]
        self.states = [[torch.zeros(n, device=device) for n in sizes] for _ in range(nstates)]
        self.comps = [torch.zeros(n, dtype=dtype, device=device) for n in sizes] if kahan else []
        self.counters = torch.zeros(len(sizes) + 1, Layout.NUM_COUNTERS, dtype=torch.int64,
                                    device=device)
        self.sums = torch.zeros(len(sizes) + 1, Layout.NUM_SUMS, dtype=torch.float64,
                                device=device)
        self.rows = list(range(1, len(sizes) + 1))  # row 0 stays unused: rows are honoured
        self.sizes, self.device, self.seed = list(sizes), device, seed
        self.indices = list(range(len(sizes)))  # each tensor's index in its stream keys
        self.grad_source = self

    def only(self, i: int) -> "Problem":
        """A problem holding just tensor i, with the same data, gradients and stream keys."""
        sub = Problem(self.kind, self.dtype, sizes=[], seed=self.seed,
                      kahan=bool(self.comps), device=self.device)
        sub.params = [self.params[i].clone()]
        sub.states = [[s[i].clone()] for s in self.states]
        sub.comps = [self.comps[i].clone()] if self.comps else []
        sub.counters = self.counters[:2].clone().zero_()
        sub.sums = self.sums[:2].clone().zero_()
        sub.rows, sub.sizes, sub.indices = [1], [self.sizes[i]], [i]
        sub.grad_source, sub.grad_index = self, i
        return sub

    def grads(self, step, specials=False):
        if self.grad_source is not self:
            return [self.grad_source.grads(step, specials)[self.grad_index]]
        g = torch.Generator().manual_seed(1000 * self.seed + step)
        out = []
        for n in self.sizes:
            x = torch.randn(n, generator=g) * 10.0 ** float(torch.randint(-6, 1, (1,),
                                                                           generator=g))
            if specials and n > 20:
                x[6:10] = torch.tensor([float("inf"), float("nan"), 0.0, 1e-30])
            out.append(x.to(self.dtype).to(self.device))
        return out

    def run(self, impl, config, steps=3, stochastic=False, grad_scale=None, found_inf=None,
            track=True, specials=False):
        name, h = config
        h = dict(h)
        maximize = h.pop("maximize", False)
        for step in range(1, steps + 1):
            grads = self.grads(step, specials)
            if grad_scale is not None:
                grads = [(x.float() * float(grad_scale)).to(self.dtype) for x in grads]
            keys = [rules.stream_key(self.seed, i, step) for i in self.indices]
            table = (self.counters, self.sums) if track else (None, None)
            if name == "sgd":
                impl.sgd_step(self.params, grads, self.states[0] if h["momentum"] else [],
                              self.comps, *table, self.rows, keys, [step == 1] * len(grads),
                              grad_scale, found_inf, h["lr"], h["momentum"], h["dampening"],
                              h["weight_decay"], h["nesterov"], maximize, stochastic)
            elif name == "adam":
                impl.adam_step(self.params, grads, self.states[0], self.states[1],
                               self.states[2] if h["amsgrad"] else [], self.comps, *table,
                               self.rows, keys,
                               [rules.adam_step_size(h["lr"], h["beta1"], step)] * len(grads),
                               [rules.adam_bias_correction2_sqrt(h["beta2"], step)] * len(grads),
                               grad_scale, found_inf, h["lr"], h["beta1"], h["beta2"], h["eps"],
                               h["weight_decay"], h["decoupled"], h["amsgrad"], maximize,
                               stochastic)
            else:
                impl.lion_step(self.params, grads, self.states[0], self.comps, *table, self.rows,
                               keys, grad_scale, found_inf, h["lr"], h["beta1"], h["beta2"],
                               h["weight_decay"], maximize, stochastic)
        return self


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().view({4: torch.int32, 2: torch.int16}[t.element_size()])


def state_bits(t: torch.Tensor) -> torch.Tensor:
    """Bits of an fp32 state with NaNs made canonical (their payloads may differ by backend)."""
    t = t.detach().cpu()
    return torch.where(torch.isnan(t), torch.tensor(float("nan")), t).view(torch.int32)


def implementation(name: str):
    return backends._module(name)
