"""Property tests of the fused steps: random sizes and parameters and gradients drawn across
every float class (zeros, subnormals, huge, inf, NaN, at random places and scales), with any
rule, dtype and landing mode. Every kernel backend (each instruction set of the CPU kernels)
against the pure-torch reference: parameters, states and counters bit for bit."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import DTYPES, examples
from step_cases import CONFIGS, Problem, implementation, landing_modes
from test_steps import KERNEL_CASES, REFERENCE, assert_same

SPECIALS = [0.0, -0.0, 1e-45, -1e-40, 1.2e-38, 2.0**-24, 6e-5, 1.0, -3.5, 65504.0, 1e30, 3e38,
            float("inf"), float("-inf"), float("nan")]


class DrawnProblem(Problem):
    """A one-tensor Problem with given parameters and the same given gradients every step."""

    def __init__(self, kind, dtype, params, grads, kahan, device):
        super().__init__(kind, dtype, sizes=[params.numel()], kahan=kahan, device=device)
        self.params = [params.to(device=device, dtype=dtype, copy=True)]
        self.fixed_grads = grads.to(dtype)

    def grads(self, step, specials=False):
        return [self.fixed_grads.to(self.device)]


def drawn_tensor(data, n: int, label: str) -> torch.Tensor:
    """N(0, 1) scaled by 2^e (e drawn from the whole fp32 range that steps can survive), with a
    drawn share of the elements replaced by special values."""
    seed = data.draw(st.integers(0, 2**31 - 1), label=f"{label} seed")
    exponent = data.draw(st.integers(-140, 60), label=f"{label} exponent")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=torch.float64) * 2.0**exponent
    x = x.float()
    if n:
        count = data.draw(st.integers(0, min(n, 12)), label=f"{label} specials")
        where = torch.randint(0, n, (count,), generator=g)
        values = torch.tensor(SPECIALS)[torch.randint(0, len(SPECIALS), (count,), generator=g)]
        x[where] = values
    return x


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@settings(max_examples=examples(150))
@given(data=st.data())
def test_steps_match_reference_for_any_values(backend, device, data):
    config = data.draw(st.sampled_from(CONFIGS), label="config")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    stochastic, kahan = data.draw(st.sampled_from(landing_modes(dtype)), label="landing")
    # Up to three 256-element groups of the AVX-512 kernel and a tail.
    n = data.draw(st.integers(0, 3 * 256 + 40), label="n")
    params, grads = drawn_tensor(data, n, "params"), drawn_tensor(data, n, "grads")
    kind = config[0]
    ours = DrawnProblem(kind, dtype, params, grads, kahan, device).run(
        implementation(backend), config, steps=2, stochastic=stochastic)
    ref = DrawnProblem(kind, dtype, params, grads, kahan, "cpu").run(
        REFERENCE, config, steps=2, stochastic=stochastic)
    assert_same(ours, ref)
