"""bitkernels.optim as a drop-in for torch.optim in a training loop: param groups with their
own hyper-parameters, frozen parameters, zero_grad(set_to_none=False), named parameters and
lr schedulers, with the same losses as torch (fp32)."""

from __future__ import annotations

import pytest
import torch

import bitkernels as bk

CASES = [
    ("SGD", dict(lr=0.05, momentum=0.9), dict(lr=0.01, weight_decay=0.01, nesterov=True,
                                              momentum=0.8)),
    ("Adam", dict(lr=1e-2), dict(lr=3e-3, betas=(0.8, 0.99), amsgrad=True)),
    ("AdamW", dict(lr=1e-2), dict(lr=1e-3, weight_decay=0.2)),
]


def build(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.GELU(), torch.nn.Linear(32, 32),
                               torch.nn.GELU(), torch.nn.Linear(32, 1))


def run(module, name, defaults, second, set_to_none, named, steps=30):
    model = build()
    model[2].bias.requires_grad_(False)  # frozen: grad stays None, never stepped
    first_params = list(model[0].parameters()) + list(model[2].parameters())
    rest = list(model[4].parameters())
    if named:
        params = [{"params": [(n, p) for n, p in model.named_parameters()
                              if any(p is q for q in first_params)]},
                  {"params": [(n, p) for n, p in model.named_parameters()
                              if any(p is q for q in rest)], **second}]
    else:
        params = [{"params": first_params}, {"params": rest, **second}]
    extra = dict(backend="cpu") if module is bk.optim else {}
    opt = getattr(module, name)(params, **defaults, **extra)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x, y = torch.randn(64, 10, generator=g), torch.randn(64, 1, generator=g)
        opt.zero_grad(set_to_none=set_to_none)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        scheduler.step()
        losses.append(loss.item())
    return model, opt, losses


@pytest.mark.parametrize("name,defaults,second", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("set_to_none", [True, False], ids=["none", "zeros"])
@pytest.mark.parametrize("named", [False, True], ids=["params", "named"])
def test_same_losses_as_torch(name, defaults, second, set_to_none, named):
    ours_model, ours, ours_losses = run(bk.optim, name, defaults, second, set_to_none, named)
    theirs_model, _, theirs_losses = run(torch.optim, name, defaults, second, set_to_none, named)
    torch.testing.assert_close(ours_losses, theirs_losses, rtol=1e-4, atol=0)
    assert torch.equal(ours_model[2].bias, build()[2].bias)  # the frozen bias never moved
    assert ours.param_groups[1]["lr"] == pytest.approx(second["lr"] * 0.125)  # scheduler drove it
    stats = ours.bit_stats()
    if named:
        assert "4.weight" in stats and "0.bias" in stats
    assert int(stats["2.bias" if named else "g0.3"].steps) == 0  # frozen: not counted


def test_grad_scaler_skip_leaves_parameters_states_and_counters():
    model = build()
    opt = bk.optim.AdamW(model.parameters(), lr=1e-2, backend="cpu")
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    x, y = torch.randn(16, 10), torch.randn(16, 1)
    for poison in (False, True):
        opt.zero_grad()
        scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
        if poison:
            model[0].weight.grad[0, 0] = float("nan")
            params = [p.detach().clone() for p in model.parameters()]
            states = {id(p): {k: v.clone() for k, v in opt.state[p].items()}
                      for p in model.parameters()}
            counters = [s.counters.clone() for s in opt.bit_stats().values()]
        scaler.step(opt)
        scaler.update()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params))
    for p in model.parameters():
        assert all(torch.equal(v, states[id(p)][k]) for k, v in opt.state[p].items())
    assert all(torch.equal(s.counters, c) for s, c in zip(opt.bit_stats().values(), counters))
    assert scaler.get_scale() == 2.0 ** 9
