"""The ops as torch custom ops: torch.library.opcheck (schema, fake tensors, AOT dispatch) for
each, and an optimizer step inside torch.compile."""

from __future__ import annotations

import warnings

import pytest
import torch

import bitkernels as bk
from bitkernels.backends import _ext
from bitkernels.stats import Layout

pytestmark = pytest.mark.skipif(_ext.load_cpu() is not None, reason=str(_ext.load_cpu()))


def table(rows=2):
    return (torch.zeros(rows, Layout.NUM_COUNTERS, dtype=torch.int64),
            torch.zeros(rows, Layout.NUM_SUMS, dtype=torch.float64))


def step_args(n=300, dtype=torch.bfloat16, states=1):
    g = torch.Generator().manual_seed(0)
    params = [(torch.randn(n, generator=g) * 0.02).to(dtype), torch.randn(7).to(dtype)]
    grads = [torch.randn_like(p.float()).to(dtype) for p in params]
    state = [[torch.zeros(p.shape) for p in params] for _ in range(states)]
    comps = [torch.zeros_like(p) for p in params]
    return params, grads, state, comps


def op_cases():
    old = torch.randn(100)
    new = old + 1e-3
    yield "bitflip_stats", (old, new, None, *[t[0] for t in table(1)])
    yield "bitflip_stats_update", (old.bfloat16(), new.bfloat16(), torch.full((100,), 1e-3),
                                   *[t[0] for t in table(1)])
    params, grads, (buf,), comps = step_args()
    yield "sgd_step", (params, grads, buf, comps, *table(), [0, 1], [3, 4], [True, False],
                       torch.tensor([2.0]), torch.zeros(1), 0.1, 0.9, 0.0, 0.01, False, False,
                       True)
    params, grads, (m, v), comps = step_args(states=2)
    yield "adam_step", (params, grads, m, v, [], comps, *table(), [0, 1], [3, 4], [0.01, 0.01],
                        [0.03, 0.03], None, None, 1e-3, 0.9, 0.999, 1e-8, 0.01, True, False,
                        False, False)
    params, grads, (m,), _ = step_args(dtype=torch.float32)
    yield "lion_step", (params, grads, m, [], None, None, [0, 1], [3, 4], None, None, 1e-4,
                        0.9, 0.99, 0.1, False, False)


@pytest.mark.parametrize("name,args", list(op_cases()), ids=[c[0] for c in op_cases()])
def test_opcheck(name, args):
    op = getattr(torch.ops.bitkernels, name.removesuffix("_update")).default
    torch.library.opcheck(op, args)


def test_step_inside_torch_compile():
    torch.manual_seed(0)
    models = [torch.nn.Linear(8, 1) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [bk.optim.AdamW(m.parameters(), lr=1e-2, backend="cpu") for m in models]
    compiled_step = torch.compile(opts[0].step, backend="aot_eager")
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            for model, step in zip(models, (compiled_step, opts[1].step)):
                model.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                step()
    for a, b in zip(*(m.parameters() for m in models)):
        assert torch.equal(a, b)
    stats = [opt.bit_stats(m.weight) for opt, m in zip(opts, models)]
    assert int(stats[0].steps) == 3 and stats[0].equal(stats[1])
