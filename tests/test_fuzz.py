"""Hostile-input fuzzing of the optimizers: random optimizer, hyper-parameters, dtype, landing
mode, shapes (empty and non-contiguous included) and values from every float class, stepped a
few times on every kernel backend and on the pure-torch reference through the same optimizer
class. No crash; parameters, states and counters bit for bit, sums to the blocked-fp32
tolerance. (The op-level properties are in test_step_properties.py and test_bitflip_stats.py.)"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bitkernels as bk
from bitkernels.stats import Layout
from cases import examples
from oracle import SUM_ATOL_PER_ELEMENT, SUM_RTOL
from step_cases import bits, state_bits
from test_step_properties import SPECIALS
from test_steps import KERNEL_CASES

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@st.composite
def optimizer_spec(draw):
    """(class, keyword arguments) of a valid optimizer configuration."""
    name = draw(st.sampled_from(["sgd", "adam", "adamw", "lion"]))
    lr = draw(st.sampled_from([1e-6, 1e-4, 1e-3, 0.1, 1.0]))
    wd = draw(st.sampled_from([0.0, 0.0, 1e-2, 0.5]))
    common = dict(lr=lr, weight_decay=wd, rounding=draw(st.sampled_from(["nearest",
                                                                        "stochastic"])),
                  kahan=draw(st.booleans()), seed=draw(st.integers(0, 2**40)))
    if name == "sgd":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
        dampening = draw(st.sampled_from([0.0, 0.1])) if momentum else 0.0
        nesterov = momentum > 0 and dampening == 0 and draw(st.booleans())
        return bk.optim.SGD, dict(common, momentum=momentum, dampening=dampening,
                                  nesterov=nesterov, maximize=draw(st.booleans()))
    betas = (draw(st.sampled_from([0.0, 0.5, 0.9])), draw(st.sampled_from([0.0, 0.9, 0.999])))
    if name == "lion":
        return bk.optim.Lion, dict(common, betas=betas, maximize=draw(st.booleans()))
    cls = bk.optim.Adam if name == "adam" else bk.optim.AdamW
    return cls, dict(common, betas=betas, eps=draw(st.sampled_from([1e-12, 1e-8, 1e-3])),
                     amsgrad=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def tensor_values(draw, shape):
    """float32 values of `shape`: N(0, 1) at a drawn scale with drawn special values."""
    n = torch.Size(shape).numel()
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = (torch.randn(n, generator=g, dtype=torch.float64)
         * 2.0 ** draw(st.integers(-60, 20))).float()
    if n:
        count = draw(st.integers(0, min(n, 6)))
        x[torch.randint(0, n, (count,), generator=g)] = torch.tensor(SPECIALS)[
            torch.randint(0, len(SPECIALS), (count,), generator=g)]
    return x.reshape(shape)


@st.composite
def parameters(draw):
    """1-3 parameters of random shapes (0-d, empty, up to 3 dims), some non-contiguous
    (a transposed or sliced view), with their values and a gradient per step."""
    params = []
    for _ in range(draw(st.integers(1, 3))):
        shape = tuple(draw(st.lists(st.integers(0, 40), min_size=0, max_size=3)))
        if torch.Size(shape).numel() > 1500:
            shape = shape[:1]
        layout = draw(st.sampled_from(["contiguous", "transposed", "sliced"]))
        params.append((shape, layout, draw(tensor_values(shape)),
                       [draw(tensor_values(shape)) for _ in range(2)]))
    return params


def build(spec, dtype, backend):
    """The parameters as leaf tensors in `dtype` laid out as drawn, each with its own storage
    (a view of the drawn values would let one run step the other's starting point)."""
    out = []
    for shape, layout, values, _ in spec:
        v = values.to(dtype, copy=True)
        if layout == "transposed" and v.dim() >= 2:
            p = torch.nn.Parameter(v.transpose(0, 1).contiguous().transpose(0, 1))
        elif layout == "sliced" and v.dim() >= 1:
            wide = torch.zeros(*v.shape[:-1], 2 * v.shape[-1], dtype=dtype)
            wide[..., ::2] = v
            p = torch.nn.Parameter(wide[..., ::2])
        else:
            p = torch.nn.Parameter(v.clone())
        out.append(p)
    return out


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@settings(max_examples=examples(50))
@given(spec=parameters(), optimizer=optimizer_spec(), dtype=st.sampled_from(DTYPES))
def test_optimizers_on_any_input_match_the_reference(backend, device, spec, optimizer, dtype):
    cls, kwargs = optimizer
    if device != "cpu":
        pytest.skip("the optimizer fuzz runs on CPU tensors")
    runs = {}
    for name in (backend, "reference"):
        params = build(spec, dtype, name)
        opt = cls(params, backend=name, **kwargs)
        for step in range(2):
            for p, (_, _, _, grads) in zip(params, spec):
                p.grad = grads[step].to(dtype)
            opt.step()
        runs[name] = (params, opt)
    (ours, ours_opt), (ref, ref_opt) = runs[backend], runs["reference"]
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert a.shape == b.shape and a.stride() == b.stride(), i
        assert torch.equal(bits(a.detach().contiguous()), bits(b.detach().contiguous())), i
        for key, value in ours_opt.state[a].items():
            other = ref_opt.state[b][key]
            if key == "step":
                assert float(value) == float(other)
            elif key == "kahan_comp":
                assert torch.equal(bits(value), bits(other)), key
            else:
                assert torch.equal(state_bits(value), state_bits(other)), key
    for (name, s1), s2 in zip(ours_opt.bit_stats().items(), ref_opt.bit_stats().values()):
        assert torch.equal(s1.counters, s2.counters), name
        atol = max(1e-300, SUM_ATOL_PER_ELEMENT * int(s2.counters[Layout.NUMEL]))
        torch.testing.assert_close(s1.sums, s2.sums, rtol=SUM_RTOL, atol=atol)
