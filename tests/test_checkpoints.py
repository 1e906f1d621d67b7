"""state_dict / load_state_dict: torch.optim's keys and shapes, checkpoints crossing between
torch.optim and bitkernels.optim in both directions, fp32 states of 16-bit parameters kept
fp32, and exact resume (stochastic rounding, Kahan, amsgrad and statistics included)."""

from __future__ import annotations

import copy
import io

import pytest
import torch

import bitkernels as bk
from test_optim import mlp, train

PAIRS = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
]
IDS = [name for name, _ in PAIRS]


def roundtrip(state_dict):
    """Through torch.save / torch.load, as a checkpoint file would go."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("name,kwargs", PAIRS, ids=IDS)
def test_same_keys_and_shapes_as_torch(name, kwargs):
    ours_model, theirs_model = mlp(), mlp()
    ours = getattr(bk.optim, name)(ours_model.parameters(), backend="cpu", **kwargs)
    theirs = getattr(torch.optim, name)(theirs_model.parameters(), **kwargs)
    train(ours_model, ours, steps=2), train(theirs_model, theirs, steps=2)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a["state"].keys() == b["state"].keys()
    for pid in b["state"]:
        # torch's keys, plus `step` where torch keeps none (SGD): it keys our rounding streams.
        assert set(a["state"][pid]) - set(b["state"][pid]) <= {"step"}
        assert set(b["state"][pid]) <= set(a["state"][pid])
        for key, value in b["state"][pid].items():
            assert a["state"][pid][key].shape == value.shape, key
    assert set(b["param_groups"][0]) <= set(a["param_groups"][0])


@pytest.mark.parametrize("name,kwargs", PAIRS, ids=IDS)
@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
def test_checkpoints_cross_between_torch_and_ours(name, kwargs, direction):
    """Five steps with one, a checkpoint, five more with the other: the same as ten steps of
    torch (fp32, to the tolerance of the fp32 agreement test)."""
    first, second = (torch.optim, bk.optim) if direction == "torch_to_ours" else (bk.optim,
                                                                                   torch.optim)
    extra = lambda module: dict(backend="cpu") if module is bk.optim else {}  # noqa: E731
    model = mlp()
    opt = getattr(first, name)(model.parameters(), **kwargs, **extra(first))
    train(model, opt, steps=5)
    checkpoint = roundtrip(opt.state_dict())
    resumed = getattr(second, name)(model.parameters(), **kwargs, **extra(second))
    resumed.load_state_dict(checkpoint)
    losses = train(model, resumed, steps=5)

    reference = mlp()
    reference_opt = getattr(torch.optim, name)(reference.parameters(), **kwargs)
    reference_losses = train(reference, reference_opt, steps=10)[5:]
    torch.testing.assert_close(losses, reference_losses, rtol=1e-5, atol=1e-7)
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_torch_bf16_checkpoint_widens_to_fp32_states():
    model = mlp(dtype=torch.bfloat16)
    theirs = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train(model, theirs, steps=3)
    ours = bk.optim.AdamW(model.parameters(), lr=1e-2, backend="cpu")
    ours.load_state_dict(roundtrip(theirs.state_dict()))
    for p in model.parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            assert ours.state[p][key].dtype == torch.float32
            assert torch.equal(ours.state[p][key], theirs.state[p][key].float())
    train(model, ours, steps=2)  # and it steps


@pytest.mark.parametrize("factory", [
    lambda ps: bk.optim.AdamW(ps, lr=1e-2, amsgrad=True, rounding="stochastic", kahan=True,
                              seed=3, backend="cpu"),
    lambda ps: bk.optim.SGD(ps, lr=0.05, momentum=0.9, kahan=True, backend="cpu"),
    lambda ps: bk.optim.Lion(ps, lr=1e-3, rounding="stochastic", seed=5, backend="cpu"),
], ids=["adamw", "sgd", "lion"])
def test_exact_resume_mid_run(factory):
    """A bf16 run saved after 4 steps and resumed in a fresh model and optimizer continues bit
    for bit like the uninterrupted run: parameters, fp32 states, Kahan buffers, statistics."""
    whole = mlp(dtype=torch.bfloat16)
    whole_opt = factory(whole.parameters())
    train(whole, whole_opt, steps=8)

    first = mlp(dtype=torch.bfloat16)
    first_opt = factory(first.parameters())
    train(first, first_opt, steps=4)
    checkpoint = roundtrip({"model": first.state_dict(), "opt": first_opt.state_dict()})
    resumed = mlp(seed=99, dtype=torch.bfloat16)
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt = factory(resumed.parameters())
    resumed_opt.load_state_dict(checkpoint["opt"])
    for p in resumed.parameters():
        for key, value in resumed_opt.state[p].items():
            if key not in ("step", "kahan_comp"):
                assert value.dtype == torch.float32, key
    train(resumed, resumed_opt, steps=4)

    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a.view(torch.int16), b.view(torch.int16))
    for p, q in zip(whole.parameters(), resumed.parameters()):
        for key, value in whole_opt.state[p].items():
            assert torch.equal(value, resumed_opt.state[q][key]), key
    for (name, a), b in zip(whole_opt.bit_stats().items(), resumed_opt.bit_stats().values()):
        assert a.equal(b), name


def test_state_dict_is_a_snapshot():
    model = mlp()
    opt = bk.optim.AdamW(model.parameters(), backend="cpu")
    train(model, opt, steps=2)
    saved = copy.deepcopy(opt.state_dict())
    train(model, opt, steps=1)
    counters = saved["bitkernels"]["bit_stats"][0][2]
    assert int(counters[:, bk.stats.Layout.STEPS].max()) == 2


def test_a_pickled_or_copied_optimizer_keeps_its_options_and_statistics():
    """torch.save(optimizer) and copy.deepcopy carry the options (torch.optim pickles only
    defaults, state and param_groups) and the statistics, and the copy steps."""
    model = mlp(dtype=torch.bfloat16)
    opt = bk.optim.AdamW(model.parameters(), lr=1e-2, rounding="stochastic", kahan=True,
                         seed=7, backend="cpu")
    train(model, opt, steps=2)
    buffer = io.BytesIO()
    torch.save(opt, buffer)
    buffer.seek(0)
    for restored in (torch.load(buffer, weights_only=False), copy.deepcopy(opt)):
        assert (restored.rounding, restored.kahan, restored.seed, restored.backend,
                restored.track_bits) == ("stochastic", True, 7, "cpu", True)
        params = [p for group in restored.param_groups for p in group["params"]]
        assert all(torch.equal(a.counters, b.counters)
                   for a, b in zip(restored.bit_stats().values(), opt.bit_stats().values()))
        for p in params:
            p.grad = torch.ones_like(p)
        restored.step()
        assert all(int(s.steps) == 3 for s in restored.bit_stats().values())
