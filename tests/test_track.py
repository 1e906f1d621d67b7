"""bitkernels.track: any torch optimizer, counted with bitflip_stats after its step."""

from __future__ import annotations

import pytest
import torch

import bitkernels as bk


def model_and_data(dtype=torch.float32):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    return model.to(dtype), torch.randn(32, 8, dtype=dtype), torch.randn(32, 1, dtype=dtype)


@pytest.mark.parametrize("make", [lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: torch.optim.AdamW(ps, lr=1e-3),
                                  lambda ps: torch.optim.RMSprop(ps, lr=1e-3)],
                         ids=["sgd", "adamw", "rmsprop"])
def test_counts_equal_bitflip_stats_of_snapshots(make):
    model, x, y = model_and_data()
    opt = bk.track(make(model.parameters()), named_parameters=model.named_parameters(),
                   backend="reference")
    expected = {name: bk.BitStats(p.dtype) for name, p in model.named_parameters()}
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        opt.step()
        for name, p in model.named_parameters():
            bk.bitflip_stats(before[name], p.detach(), backend="reference", out=expected[name])
    got = opt.bit_stats()
    assert set(got) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for name, stats in got.items():
        assert stats.equal(expected[name]), name
        assert int(stats.steps) == 3 and int(stats.changed) > 0


def test_track_bits_toggled_between_steps_counts_the_tracked_steps_only():
    model, x, y = model_and_data()
    twin, _, _ = model_and_data()
    opt = bk.track(torch.optim.AdamW(model.parameters(), lr=1e-3), track_bits=False,
                   named_parameters=model.named_parameters(), backend="reference")
    bare = torch.optim.AdamW(twin.parameters(), lr=1e-3)
    expected = {name: bk.BitStats(p.dtype) for name, p in model.named_parameters()}
    for step in range(5):
        opt.track_bits = step % 2 == 1
        for m, o in ((model, opt), (twin, bare)):
            o.zero_grad()
            torch.nn.functional.mse_loss(m(x), y).backward()
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        opt.step()
        bare.step()
        if opt.track_bits:
            for name, p in model.named_parameters():
                bk.bitflip_stats(before[name], p.detach(), backend="reference",
                                 out=expected[name])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))
    got = opt.bit_stats()
    assert set(got) == set(expected)
    for name, stats in got.items():
        assert stats.equal(expected[name]), name
        assert int(stats.steps) == 2


def test_wrapper_delegates_and_skips_frozen_params():
    model, x, y = model_and_data(torch.bfloat16)
    model[2].bias.requires_grad_(False)
    opt = bk.track(torch.optim.SGD(model.parameters(), lr=0.1))
    scheduler = torch.optim.lr_scheduler.StepLR(opt.optimizer, step_size=1, gamma=0.5)
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    scheduler.step()
    assert opt.param_groups[0]["lr"] == 0.05
    assert "g0.3" not in opt.bit_stats()  # no gradient, not stepped, not counted
    assert opt.bit_stats(model[0].weight).dtype == torch.bfloat16
    opt.reset_bit_stats()
    assert int(opt.bit_stats(model[0].weight).steps) == 0
    with pytest.raises(TypeError, match="optimizer"):
        bk.track(model)
    with pytest.raises(ValueError, match="not a parameter"):
        opt.bit_stats(torch.zeros(1))


def test_grad_scaler_skips_the_step_and_the_count():
    model, x, y = model_and_data()
    opt = bk.track(torch.optim.SGD(model.parameters(), lr=0.1))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
    model[0].weight.grad[0, 0] = float("inf")
    before = [p.detach().clone() for p in model.parameters()]
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert opt.bit_stats() == {}
    opt.zero_grad()
    scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
    scaler.step(opt)
    assert int(opt.bit_stats(model[0].weight).steps) == 1


def test_copies_are_kept_between_steps_on_the_cpu_and_let_go_with_their_parameter():
    model, x, y = model_and_data()
    opt = bk.track(torch.optim.AdamW(model.parameters(), lr=1e-3), backend="reference")
    twins = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
    fresh = bk.track(torch.optim.AdamW(twins, lr=1e-3), backend="reference", keep_copies=False)
    pointers = []
    for step in range(3):
        if step == 2:
            model[2].bias.requires_grad_(False)  # not stepped from here on
            twins[3].requires_grad_(False)
        for o, params in ((opt, list(model.parameters())), (fresh, twins)):
            o.zero_grad()
            loss = torch.nn.functional.mse_loss(torch.nn.functional.linear(
                torch.tanh(torch.nn.functional.linear(x, params[0], params[1])),
                params[2], params[3]), y)
            loss.backward()
            o.step()
        pointers.append({i: c.data_ptr() for i, c in opt._copies.items()})
        assert fresh._copies == {}
    assert pointers[0] == pointers[1]  # the same buffers, refreshed in place
    assert id(model[2].bias) in pointers[1] and id(model[2].bias) not in pointers[2]
    assert len(opt.bit_stats()) == len(fresh.bit_stats()) == 4
    for a, b in zip(opt.bit_stats().values(), fresh.bit_stats().values()):
        assert a.equal(b)
    with pytest.raises(TypeError, match="keep_copies"):
        bk.track(torch.optim.SGD(model.parameters(), lr=0.1), keep_copies="yes")
