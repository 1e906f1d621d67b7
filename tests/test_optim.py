"""bitkernels.optim: agreement with torch.optim, the reproduction numbers of DESIGN.md, the
statistics seen through the optimizer, AMP, stochastic rounding and bad input."""

from __future__ import annotations

import copy

import pytest
import torch

import bitkernels as bk
from bitkernels.stats import Layout
from cases import BACKEND_CASES, DTYPES, skipped

CPU_BACKENDS = sorted({c.values[0] for c in BACKEND_CASES
                       if c.values[1] == "cpu" and not skipped(c)})
# The reproductions take 10,000 steps: compiled backends only (the others are held to the
# compiled ones bit for bit by test_steps.py).
FAST_BACKENDS = [b for b in CPU_BACKENDS if b == "cpu"]


def mlp(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 24), torch.nn.Tanh(),
                               torch.nn.Linear(24, 1)).to(dtype)


def train(model, opt, steps=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    x = torch.randn(32, 12, generator=g).to(dtype)
    y = torch.randn(32, 1, generator=g).to(dtype)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x).float() - y.float()) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


TORCH_PAIRS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=False)),
    ("Adam", dict(lr=1e-2, weight_decay=0.01)),
    ("Adam", dict(lr=1e-2, amsgrad=True, betas=(0.8, 0.99))),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)),
]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name,kwargs", TORCH_PAIRS, ids=lambda x: str(x))
def test_fp32_matches_torch_optim(backend, name, kwargs):
    ours_model, theirs_model = mlp(), mlp()
    ours = getattr(bk.optim, name)(ours_model.parameters(), backend=backend, **kwargs)
    theirs = getattr(torch.optim, name)(theirs_model.parameters(), **kwargs)
    ours_losses, theirs_losses = train(ours_model, ours), train(theirs_model, theirs)
    torch.testing.assert_close(ours_losses, theirs_losses, rtol=1e-5, atol=1e-7)
    for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name,kwargs", [TORCH_PAIRS[1], TORCH_PAIRS[3], TORCH_PAIRS[6]],
                         ids=lambda x: str(x))
def test_low_precision_within_torchs_own_fused_vs_forloop_spread(backend, dtype, name, kwargs):
    """16-bit parameters: torch's fused and for-loop implementations disagree (they round
    intermediates and keep states in the parameter dtype); ours must be as close to one of them
    as they are to each other. Where torch diverges to NaN (fp16 Adam: its fp16 exp_avg_sq
    underflows), ours, with fp32 states, must stay finite."""
    models = [mlp(dtype=dtype) for _ in range(3)]
    fused = getattr(torch.optim, name)(models[0].parameters(), fused=True, **kwargs)
    loop = getattr(torch.optim, name)(models[1].parameters(), foreach=False, **kwargs)
    ours = getattr(bk.optim, name)(models[2].parameters(), backend=backend, **kwargs)
    for m, o in zip(models, (fused, loop, ours)):
        train(m, o)
    for f, lp, b in zip(*(m.parameters() for m in models)):
        assert torch.isfinite(b).all()
        if not (torch.isfinite(f).all() and torch.isfinite(lp).all()):
            continue
        spread = (f.float() - lp.float()).abs().max()
        nearest = min((b.float() - t.float()).abs().max() for t in (f, lp))
        ulp = bk.formats.ulp(f.detach().abs().max()).float()
        assert nearest <= spread + 2 * ulp, (float(nearest), float(spread))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_lion_matches_a_float64_statement(backend):
    torch.manual_seed(0)
    p = torch.randn(500)
    grads = [torch.randn(500) for _ in range(10)]
    param = torch.nn.Parameter(p.clone())
    opt = bk.optim.Lion([param], lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1, backend=backend)
    x, m = p.double(), torch.zeros(500, dtype=torch.float64)
    for g in grads:
        param.grad = g.clone()
        opt.step()
        c = 0.9 * m + 0.1 * g.double()
        x = x - 1e-3 * (torch.sign(c) + 0.1 * x)
        m = 0.99 * m + 0.01 * g.double()
    torch.testing.assert_close(param.detach().double(), x, rtol=0, atol=1e-6)


# ---- DESIGN.md reproduction numbers ----------------------------------------------------------
def repeat_update(start, update, times, dtype, backend, **options):
    """Adds `update` (exactly, in fp32) to a parameter `times` times: SGD with lr = update and
    gradient -1."""
    p = torch.nn.Parameter(torch.full((4096,), start, dtype=dtype))
    opt = bk.optim.SGD([p], lr=update, backend=backend, **options)
    p.grad = torch.full_like(p, -1.0)
    for _ in range(times):
        opt.step()
    return p.detach().float()


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_bf16_small_updates_vanish_with_nearest(backend):
    p = repeat_update(0.0, 1e-4, 10_000, torch.bfloat16, backend)
    assert float(p[0]) == 0.03125 and torch.all(p == p[0])


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_bf16_kahan_recovers_the_sum(backend):
    p = repeat_update(0.0, 1e-4, 10_000, torch.bfloat16, backend, kahan=True)
    exact = 10_000 * torch.tensor(1e-4, dtype=torch.float32).double()
    assert abs(float(p[0]) - float(exact)) <= float(bk.formats.ulp(float(exact), torch.bfloat16))
    assert float(p[0]) == 0.99609375


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_bf16_stochastic_rounding_is_unbiased(backend):
    p = repeat_update(0.0, 1e-4, 10_000, torch.bfloat16, backend, rounding="stochastic")
    mean, spread = float(p.mean()), float(p.std())
    assert abs(mean - 1.0) < 4 * spread / 4096 ** 0.5 + 1e-3, (mean, spread)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_one_plus_a_thousandth(backend):
    assert float(repeat_update(1.0, 0.001, 1000, torch.bfloat16, backend)[0]) == 1.0
    assert float(repeat_update(1.0, 0.001, 1000, torch.bfloat16, backend, kahan=True)[0]) == 2.0


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_fp16_small_updates_vanish_with_nearest(backend):
    assert float(repeat_update(0.0, 1e-4, 10_000, torch.float16, backend)[0]) == 0.25


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_lost_fraction_at_lr_1e5(backend):
    """N(0, 0.02) bf16 weights, random-sign unit gradients, one step of lr 1e-5: 84.5% lost."""
    g = torch.Generator().manual_seed(0)
    p = torch.nn.Parameter((torch.randn(1 << 16, generator=g) * 0.02).bfloat16())
    p.grad = (torch.randint(0, 2, p.shape, generator=g) * 2 - 1).bfloat16()
    opt = bk.optim.SGD([p], lr=1e-5, backend=backend)
    opt.step()
    stats = opt.bit_stats(p)
    assert abs(int(stats.lost) / p.numel() - 0.845) < 0.005
    assert int(stats.lost) + int(stats.changed) == p.numel()


# ---- statistics through the optimizer --------------------------------------------------------
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_counters_equal_bitflip_stats_of_a_snapshot(backend, dtype, rounding):
    model = mlp(dtype=dtype)
    opt = bk.optim.AdamW(model.named_parameters(), lr=1e-3, rounding=rounding, backend=backend)
    expected = {name: bk.BitStats(dtype) for name, _ in model.named_parameters()}
    g = torch.Generator().manual_seed(3)
    for _ in range(4):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g).to(dtype)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        opt.step()
        for name, p in model.named_parameters():
            bk.bitflip_stats(before[name], p.detach(), out=expected[name], backend="reference")
    stats = opt.bit_stats()
    assert set(stats) == set(expected)
    for name, want in expected.items():
        got = stats[name]
        assert torch.equal(got.flips, want.flips), name
        assert int(got.changed) == int(want.changed) and int(got.steps) == 4
        assert int(got.numel) == int(want.numel)


def test_names_without_named_parameters_and_reset():
    model = mlp()
    opt = bk.optim.SGD([{"params": model[0].parameters()}, {"params": model[2].parameters()}],
                       lr=0.1)
    train(model, opt, steps=2)
    stats = opt.bit_stats()
    assert list(stats) == ["g0.0", "g0.1", "g1.0", "g1.1"]
    assert int(stats["g1.1"].steps) == 2
    live = opt.bit_stats(model[2].bias)
    opt.reset_bit_stats()
    assert int(live.steps) == 0 and int(stats["g0.0"].numel) == 0


def test_track_bits_false_counts_nothing_and_steps_the_same():
    a, b = mlp(), mlp()
    oa = bk.optim.AdamW(a.parameters(), lr=1e-2)
    ob = bk.optim.AdamW(b.parameters(), lr=1e-2, track_bits=False)
    assert train(a, oa) == train(b, ob)
    assert all(int(s.counters.abs().sum()) == 0 for s in ob.bit_stats().values())
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_track_bits_toggled_between_steps_counts_the_tracked_steps_only(backend, dtype):
    """Sampling (`opt.track_bits = step % k == 0`): the untracked steps run the kernel without
    statistics, the tracked ones count exactly what a snapshot and bitflip_stats see, and the
    bits are those of an optimizer that tracks every step."""
    sampled_model, every_model = mlp(dtype=dtype), mlp(dtype=dtype)
    sampled = bk.optim.AdamW(sampled_model.named_parameters(), lr=1e-3, backend=backend)
    every = bk.optim.AdamW(every_model.named_parameters(), lr=1e-3, backend=backend)
    expected = {name: bk.BitStats(dtype) for name, _ in sampled_model.named_parameters()}
    g = torch.Generator().manual_seed(5)
    tracked_steps = 0
    for step in range(7):
        sampled.track_bits = step % 3 == 0
        tracked_steps += sampled.track_bits
        for p, q in zip(sampled_model.parameters(), every_model.parameters()):
            p.grad = torch.randn(p.shape, generator=g).to(dtype)
            q.grad = p.grad.clone()
        before = {name: p.detach().clone() for name, p in sampled_model.named_parameters()}
        sampled.step()
        every.step()
        if sampled.track_bits:
            for name, p in sampled_model.named_parameters():
                bk.bitflip_stats(before[name], p.detach(), out=expected[name], backend="reference")
    assert all(torch.equal(p, q) for p, q in zip(sampled_model.parameters(),
                                                 every_model.parameters()))
    for name, got in sampled.bit_stats().items():
        want = expected[name]
        assert torch.equal(got.flips, want.flips), name
        assert int(got.changed) == int(want.changed) and int(got.numel) == int(want.numel)
        assert int(got.steps) == tracked_steps == 3
    assert all(int(s.steps) == 7 for s in every.bit_stats().values())


def test_frozen_parameters_are_left_alone():
    model = mlp()
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.detach().clone()
    opt = bk.optim.Adam(model.parameters(), lr=1e-2)
    train(model, opt, steps=3)
    assert torch.equal(model[0].weight, frozen)
    assert "step" not in opt.state[model[0].weight]
    assert int(opt.bit_stats(model[0].weight).steps) == 0


# ---- non-finite values ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name,kwargs", TORCH_PAIRS, ids=lambda x: str(x))
def test_non_finite_values_behave_as_in_torch_optim(backend, name, kwargs):
    """NaN and +-inf in gradients and parameters: the parameters go where torch.optim's go (NaN
    where it has NaN, the same infinities, the same finite values elsewhere), nothing raises, and
    `nonfinite` counts the elements whose update or new value is not finite."""
    def start():
        p = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 40))
        with torch.no_grad():
            p[3], p[4] = float("inf"), float("-inf")
        return p

    def grads(step):
        g = torch.linspace(-0.5, 0.7, 40) * (step + 1)
        g[10], g[11], g[12] = float("nan"), float("inf"), float("-inf")
        if step == 1:
            g[20] = float("nan")  # reaches a parameter that was finite a step ago
        return g

    ours_p, theirs_p = start(), start()
    ours = getattr(bk.optim, name)([ours_p], backend=backend, **kwargs)
    theirs = getattr(torch.optim, name)([theirs_p], foreach=False, **kwargs)
    for step in range(3):
        ours_p.grad, theirs_p.grad = grads(step), grads(step)
        ours.step()
        theirs.step()
    a, b = ours_p.detach(), theirs_p.detach()
    assert torch.equal(a.isnan(), b.isnan())
    assert torch.equal(a.isinf(), b.isinf()) and torch.equal(a[a.isinf()], b[b.isinf()])
    finite = torch.isfinite(b)
    torch.testing.assert_close(a[finite], b[finite], rtol=1e-5, atol=1e-6)
    stats = next(iter(ours.bit_stats().values()))
    # Every element that is non-finite after the last step was counted in it.
    assert int(stats.nonfinite) >= int((~finite).sum()) > 0


# ---- AMP -------------------------------------------------------------------------------------
def test_found_inf_skips_everything():
    model = mlp()
    opt = bk.optim.AdamW(model.parameters(), lr=1e-2)
    train(model, opt, steps=2)
    before = copy.deepcopy(opt.state_dict())
    params = [p.detach().clone() for p in model.parameters()]
    counters = [s.counters.clone() for s in opt.bit_stats().values()]
    opt.found_inf = torch.ones(())
    opt.step()
    del opt.found_inf
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params))
    after = opt.state_dict()["state"]
    for k, v in before["state"].items():
        assert all(torch.equal(v[key], after[k][key]) for key in v)
    assert all(torch.equal(s.counters, c) for s, c in zip(opt.bit_stats().values(), counters))


def test_grad_scaler_on_cpu():
    """torch.amp.GradScaler hands grad_scale/found_inf to the optimizer; an inf gradient skips
    the step, a finite one is unscaled in the kernel."""
    model, reference = mlp(), mlp()
    opt = bk.optim.SGD(model.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = torch.randn(8, 12), torch.randn(8, 1)
    for m, o, s in ((model, opt, scaler), (reference, ref_opt, None)):
        loss = ((m(x) - y) ** 2).mean()
        if s is None:
            loss.backward()
            o.step()
        else:
            s.scale(loss).backward()
            s.step(o)
            s.update()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    frozen = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    scaler.scale(((model(x) - y) ** 2).mean()).backward()
    next(model.parameters()).grad[0, 0] = float("inf")
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), frozen))
    assert scaler.get_scale() == 512.0


# ---- stochastic rounding ---------------------------------------------------------------------
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_stochastic_rounding_reproduces_given_seed_and_step(backend):
    def run(seed):
        model = mlp(dtype=torch.bfloat16)
        opt = bk.optim.AdamW(model.parameters(), lr=1e-3, rounding="stochastic", seed=seed,
                             backend=backend)
        train(model, opt, steps=3)
        return [p.detach().clone() for p in model.parameters()]
    a, b, c = run(7), run(7), run(8)
    assert all(torch.equal(x.view(torch.int16), y.view(torch.int16)) for x, y in zip(a, b))
    assert not all(torch.equal(x, z) for x, z in zip(a, c))


# ---- bad input -------------------------------------------------------------------------------
def test_bad_input_is_rejected_before_any_parameter_changes():
    model = mlp()
    named = list(model.named_parameters())
    opt = bk.optim.AdamW(named, lr=1e-2)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    before = [p.detach().clone() for p in model.parameters()]
    model[2].bias.grad = torch.randn(1).to_sparse()
    with pytest.raises(TypeError, match="2.bias: sparse gradients"):
        opt.step()
    # (torch itself refuses gradients of another dtype or shape; a float64 parameter is ours
    # to refuse)
    model[2].bias.grad = torch.randn(1)
    opt.add_param_group({"params": [("extra", torch.nn.Parameter(torch.zeros(3).double()))]})
    opt.param_groups[1]["params"][0].grad = torch.ones(3).double()
    with pytest.raises(TypeError, match="parameter extra has dtype torch.float64"):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert not opt.state  # no state was created either


@pytest.mark.parametrize("corrupt,error,message", [
    (lambda s: s.update(exp_avg=torch.zeros(3)), ValueError,
     r"parameter 0.weight: state 'exp_avg' has shape \(3,\), the parameter \(24, 12\)"),
    (lambda s: s.update(exp_avg_sq=s["exp_avg_sq"].half()), TypeError,
     "state 'exp_avg_sq' has dtype torch.float16; it must be torch.float32"),
    (lambda s: s.update(exp_avg=s["exp_avg"].t().contiguous().t()), ValueError,
     "state 'exp_avg' is not contiguous"),
    (lambda s: s.update(step=torch.zeros(2)), ValueError, "state 'step' must be a scalar"),
], ids=["shape", "dtype", "strides", "step"])
def test_a_broken_state_is_rejected_before_anything_changes(corrupt, error, message):
    """States that a load_state_dict of another model (or a hand edit) left wrong stop the
    step with the parameter's name, before any parameter, state or counter is written. Two
    steps first: the second checks the states the first made, and the step after the
    corruption must see that they changed."""
    model = mlp()
    opt = bk.optim.AdamW(list(model.named_parameters()), lr=1e-2)
    train(model, opt, steps=2)
    corrupt(opt.state[model[0].weight])
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    params = [p.detach().clone() for p in model.parameters()]
    states = {k: v.clone() for k, v in opt.state[model[2].weight].items()}
    counters = next(iter(opt._stat_tables.values()))[0].clone()
    with pytest.raises(error, match=message):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params))
    assert all(torch.equal(v, states[k]) for k, v in opt.state[model[2].weight].items())
    assert torch.equal(next(iter(opt._stat_tables.values()))[0], counters)


def test_a_state_dict_of_another_model_is_rejected_at_the_step():
    small, large = torch.nn.Linear(4, 3), torch.nn.Linear(5, 3)
    source = bk.optim.AdamW(large.parameters())
    large(torch.randn(2, 5)).sum().backward()
    source.step()
    opt = bk.optim.AdamW(small.parameters())
    opt.load_state_dict(source.state_dict())  # torch checks counts, not shapes
    small(torch.randn(2, 4)).sum().backward()
    before = small.weight.detach().clone()
    with pytest.raises(ValueError, match=r"g0.0: state 'exp_avg' has shape \(3, 5\)"):
        opt.step()
    assert torch.equal(small.weight, before)


def test_states_are_checked_again_when_the_parameter_changes():
    """The step skips re-checking a state it has checked before; a parameter whose .data was
    swapped for another shape or dtype after a step must still be caught."""
    model = mlp(dtype=torch.bfloat16)
    opt = bk.optim.AdamW(list(model.named_parameters()), lr=1e-2, kahan=True)
    train(model, opt, steps=2)
    weight = model[0].weight
    weight.data = torch.zeros(24, 13, dtype=torch.bfloat16)
    weight.grad = torch.ones(24, 13, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"0.weight: state 'exp_avg' has shape \(24, 12\)"):
        opt.step()
    weight.data = torch.zeros(24, 12, dtype=torch.float16)
    weight.grad = torch.ones(24, 12, dtype=torch.float16)
    with pytest.raises(TypeError, match="0.weight: state 'kahan_comp' has dtype torch.bfloat16"):
        opt.step()
    assert torch.equal(weight, torch.zeros(24, 12, dtype=torch.float16))


@pytest.mark.skipif(bk.backends._ext.load_cpu() is not None, reason="bitkernels._C not built")
def test_advance_steps_adds_one_to_all_or_none():
    """bitkernels._C.advance_steps, the optimizers' `step += 1`: every count advances as add_(1)
    would (version counter included) and comes back as a float; a list with one step it cannot
    write in memory changes none and returns None, for torch's general path."""
    advance = bk.backends._ext.cpu_module().advance_steps
    row = torch.zeros(4)
    steps = [torch.tensor(0.0), torch.tensor(2.0**24), row[2]]  # 2^24 + 1 rounds to 2^24
    versions = [s._version for s in steps]
    assert advance(steps) == [1.0, 2.0**24, 1.0]
    assert [float(s) for s in steps] == [1.0, 2.0**24, 1.0] and row.tolist() == [0, 0, 1, 0]
    assert all(s._version > v for s, v in zip(steps, versions))
    for odd in (torch.tensor(1.0, dtype=torch.float64), torch.zeros(2), torch.tensor(1),
                torch.tensor(1.0, device="meta"), 1.0):
        before = [float(s) for s in steps]
        assert advance([*steps, odd]) is None
        assert [float(s) for s in steps] == before
    assert advance([]) == []
    with pytest.raises(TypeError, match="expected a list of tensors"):
        advance(3)


def test_steps_of_other_dtypes_take_the_general_path():
    """A float64 step (e.g. from another library's checkpoint) still counts: the bucket's steps
    go through torch._foreach_add_, and the parameters step as with float32 steps."""
    models = [mlp(), mlp()]
    opts = [bk.optim.AdamW(m.parameters(), lr=1e-2) for m in models]
    for model, opt in zip(models, opts):
        train(model, opt, steps=1)
    for state in opts[1].state.values():
        state["step"] = state["step"].double()
    for model, opt in zip(models, opts):
        train(model, opt, steps=2)
    assert all(float(s["step"]) == 3 for opt in opts for s in opt.state.values())
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)


def test_mixed_devices_in_one_group_are_rejected():
    on_cpu = torch.nn.Parameter(torch.zeros(3))
    on_meta = torch.nn.Parameter(torch.zeros(3, device="meta"))
    on_cpu.grad, on_meta.grad = torch.ones(3), torch.ones(3, device="meta")
    opt = bk.optim.SGD([on_cpu, on_meta], lr=0.1)
    with pytest.raises(ValueError, match="param group 0 has parameters on cpu and meta"):
        opt.step()
    assert torch.equal(on_cpu, torch.zeros(3)) and not opt.state


@pytest.mark.parametrize("factory,kwargs,message", [
    (bk.optim.SGD, dict(lr=-1.0), "Invalid learning rate"),
    (bk.optim.SGD, dict(lr=0.1, nesterov=True), "Nesterov momentum requires"),
    (bk.optim.Adam, dict(betas=(1.0, 0.9)), "beta parameter at index 0"),
    (bk.optim.Adam, dict(eps=-1e-8), "Invalid epsilon"),
    (bk.optim.AdamW, dict(weight_decay=-0.1), "Invalid weight_decay"),
    (bk.optim.Lion, dict(betas=(0.9,)), "betas must be a pair"),
    (bk.optim.AdamW, dict(rounding="down"), "rounding must be one of"),
    (bk.optim.AdamW, dict(backend="numpy"), "backend must be 'auto' or one of"),
    (bk.optim.AdamW, dict(capturable=True), "capturable=True is not supported"),
])
def test_hyper_parameters_are_checked_at_construction(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(mlp().parameters(), **kwargs)


def test_unavailable_backend_fails_before_the_step_changes_anything():
    model = mlp()
    opt = bk.optim.SGD(model.parameters(), lr=0.1, backend="cuda")
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="backend='cuda' is unavailable"):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))


def test_layout_of_the_stats_tables():
    model = mlp()
    opt = bk.optim.SGD(model.parameters(), lr=0.1)
    train(model, opt, steps=1)
    counters, sums = next(iter(opt._stat_tables.values()))
    assert counters.shape == (4, Layout.NUM_COUNTERS) and sums.shape == (4, Layout.NUM_SUMS)


# ---- concurrency -------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [2, 4])
def test_optimizers_stepping_in_parallel_threads_match_sequential_steps(threads):
    """Independent optimizers stepped from several Python threads at once (the kernels release
    the GIL and each runs its own OpenMP team) give the bits and counters of one-by-one steps."""
    from concurrent.futures import ThreadPoolExecutor

    def make(i):  # 262K-element weights: several 64K chunks, so the OpenMP teams do overlap
        torch.manual_seed(i)
        model = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.Linear(512, 8))
        model = model.to(torch.bfloat16)
        return model, [bk.optim.AdamW(model.parameters(), lr=1e-2, rounding="stochastic",
                                      seed=i, backend="cpu"),
                       bk.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, kahan=True,
                                    backend="cpu")][i % 2]

    together, alone = [make(i) for i in range(threads)], [make(i) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        for step in range(5):
            for runs in (together, alone):
                for i, (model, _) in enumerate(runs):
                    g = torch.Generator().manual_seed(100 * step + i)
                    for p in model.parameters():
                        p.grad = torch.randn(p.shape, generator=g).to(p.dtype)
            list(pool.map(lambda run: run[1].step(), together))
            for _, opt in alone:
                opt.step()
    for (m1, o1), (m2, o2) in zip(together, alone):
        for a, b in zip(m1.parameters(), m2.parameters()):
            assert torch.equal(a.view(torch.int16), b.view(torch.int16))
        for (name, s1), s2 in zip(o1.bit_stats().items(), o2.bit_stats().values()):
            assert s1.equal(s2), name


# ---- large tensors -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("isa", bk.backends.cpu_isas())
def test_a_step_over_more_than_2_31_elements_counts_every_element(isa):
    """A bf16 parameter of 2^31 + 1000 elements (64-bit indices in every loop) whose gradient
    is zero except on a sample around 2^31 and at the ends: the parameter's bits on the sample
    and the tensor's counters equal the reference's on the sample alone (every other element
    has a zero update)."""
    n = 2**31 + 1000
    try:
        p = torch.nn.Parameter(torch.zeros(n, dtype=torch.bfloat16))
        p.grad = torch.zeros(n, dtype=torch.bfloat16)
    except RuntimeError as e:  # out of memory
        pytest.skip(f"cannot allocate 2 x {n} bf16: {e}")
    g = torch.Generator().manual_seed(0)
    idx = torch.cat([torch.arange(0, 300), torch.arange(2**31 - 300, 2**31 + 300),
                     torch.arange(n - 300, n)])
    values = (torch.randn(len(idx), generator=g) * 0.02).bfloat16()
    grads = (torch.randn(len(idx), generator=g) * 1e-2).bfloat16()
    with torch.no_grad():
        p[idx] = values
    p.grad[idx] = grads
    bk.backends.cpu_isa(isa)
    try:
        opt = bk.optim.SGD([p], lr=0.1, backend="cpu")
        opt.step()
    finally:
        bk.backends.cpu_isa("native")
    sample = torch.nn.Parameter(values.clone())
    sample.grad = grads.clone()
    ref = bk.optim.SGD([sample], lr=0.1, backend="reference")
    ref.step()
    assert torch.equal(p.detach()[idx].view(torch.int16), sample.detach().view(torch.int16))
    ours, theirs = opt.bit_stats(p).counters, ref.bit_stats(sample).counters.clone()
    theirs[Layout.NUMEL] += n - len(idx)
    theirs[Layout.ZERO] += n - len(idx)
    assert torch.equal(ours, theirs)
