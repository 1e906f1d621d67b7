"""The fused step ops of every backend against the pure-torch reference: parameters, states
and counters bit-identical on the CPU (sums to the kernels' fp32-block tolerance)."""

from __future__ import annotations

import pytest
import torch

from bitkernels.stats import Layout
from cases import BACKEND_CASES, DTYPES
from oracle import SUM_ATOL_PER_ELEMENT, SUM_RTOL
from step_cases import (CONFIG_IDS, CONFIGS, Problem, bits, implementation, landing_modes,
                        state_bits)

KERNEL_CASES = [c for c in BACKEND_CASES if c.values[0] != "reference"]
REFERENCE = implementation("reference")


def assert_same(ours: Problem, ref: Problem) -> None:
    for i, (a, b) in enumerate(zip(ours.params, ref.params)):
        assert torch.equal(bits(a), bits(b)), f"params[{i}] differ"
    for k, (xs, ys) in enumerate(zip(ours.states, ref.states)):
        for i, (a, b) in enumerate(zip(xs, ys)):
            assert torch.equal(state_bits(a), state_bits(b)), f"state {k} of tensor {i} differs"
    for i, (a, b) in enumerate(zip(ours.comps, ref.comps)):
        assert torch.equal(bits(a), bits(b)), f"kahan_comps[{i}] differ"
    assert torch.equal(ours.counters.cpu(), ref.counters.cpu())
    atol = max(1e-300, SUM_ATOL_PER_ELEMENT * int(ref.counters[:, Layout.NUMEL].max()))
    torch.testing.assert_close(ours.sums.cpu(), ref.sums.cpu(), rtol=SUM_RTOL, atol=atol)


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_reference(backend, device, config, dtype):
    for stochastic, kahan in landing_modes(dtype):
        kind = config[0]
        ours = Problem(kind, dtype, kahan=kahan, device=device).run(
            implementation(backend), config, stochastic=stochastic)
        ref = Problem(kind, dtype, kahan=kahan).run(REFERENCE, config, stochastic=stochastic)
        assert_same(ours, ref)


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@pytest.mark.parametrize("config", [CONFIGS[i] for i in (1, 4, 6, 7, 10)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_special_values(backend, device, config, dtype):
    """inf/NaN/zero/subnormal parameters and gradients: same bits, counted as nonfinite. With
    the plain AdamW and Lion kernels (CONFIGS[6], [10]), whose decay of an infinite parameter
    is a fix-up on AVX-512."""
    kind = config[0]
    ours = Problem(kind, dtype, device=device, specials=True).run(
        implementation(backend), config, specials=True)
    ref = Problem(kind, dtype, specials=True).run(REFERENCE, config, specials=True)
    assert_same(ours, ref)
    assert int(ours.counters[:, Layout.NONFINITE].sum()) > 0


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_new_values_rounded_from_subnormals_and_nans(backend, device, dtype):
    """p + d subnormal (|d| = lr = 1e-39 on zeros and on p = 1e-39) or a NaN with a sign and a
    payload (p), at every lane of both vectors of a pair: the inputs that the AVX512-BF16
    rounding of bf16 steps gets wrong (it reads subnormals as zero and keeps NaN payloads), and
    the kernels fix up. Stored and counted as the reference does."""
    config = ("lion", dict(lr=1e-39, beta1=0.9, beta2=0.99, weight_decay=0.0))
    n = 1024
    p = torch.randn(n, generator=torch.Generator().manual_seed(3)).to(dtype)
    # Apart, so that a pair of vectors holding one class does not hold the other.
    p[0:512:7], p[1:512:7], p[3:512:11] = 0.0, 1e-39, -0.0
    negative_nan = {torch.float32: -0x3FFFFF, torch.bfloat16: -0x3F, torch.float16: -0x1FF}[dtype]
    bits(p)[512::13] = negative_nan  # sign set, quiet, payload 1
    problems = [Problem("lion", dtype, sizes=[n], device=d) for d in (device, "cpu")]
    for problem in problems:
        problem.params[0] = p.to(problem.params[0].device, copy=True)
    ours = problems[0].run(implementation(backend), config)
    ref = problems[1].run(REFERENCE, config)
    assert_same(ours, ref)
    assert int(ref.counters[1, Layout.NONFINITE]) > 0


@pytest.mark.parametrize("backend,device", [c for c in BACKEND_CASES])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_grad_scale_unscales_in_kernel(backend, device, dtype):
    """Gradients scaled by 2^10 with grad_scale=2^10 step exactly as unscaled ones."""
    config = CONFIGS[4]
    scale = torch.tensor([1024.0], device=device)
    a = Problem("adam", dtype, device=device).run(implementation(backend), config,
                                                   grad_scale=scale)
    b = Problem("adam", dtype).run(REFERENCE, config)
    for x, y in zip(a.params, b.params):
        assert torch.equal(bits(x), bits(y))


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@pytest.mark.parametrize("scale", [2.0**16, 2.0**-127, 3.0, 2.0**-130],
                         ids=["2^16", "2^-127", "3", "2^-130"])
@pytest.mark.parametrize("config", [CONFIGS[i] for i in (6, 9, 10)], ids=["adamw", "sgd", "lion"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_grad_scale_matches_the_reference(backend, device, scale, config, dtype):
    """Any grad_scale, as the reference: GradScaler's powers of two (which the CPU kernels
    unscale by a multiply), others (a division), and 2^-130, whose reciprocal overflows. The
    counters and the sum of g^2, which the AVX-512 kernels scale back from the stored gradient
    (by 2^40 / grad_scale: inf for 2^-127 and 2^-130, whose groups take the exact path)."""
    kind = config[0]
    grad_scale = torch.tensor([scale])
    ours = Problem(kind, dtype, device=device).run(implementation(backend), config,
                                                   grad_scale=grad_scale.to(device))
    ref = Problem(kind, dtype).run(REFERENCE, config, grad_scale=grad_scale)
    assert_same(ours, ref)
    if dtype != torch.float16 or scale > 2.0**-20:  # else every scaled gradient is 0 in fp16
        assert float(ref.sums[:, Layout.SUM_G2].sum()) > 0


@pytest.mark.parametrize("backend,device", [c for c in BACKEND_CASES])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_found_inf_changes_nothing(backend, device, config):
    problem = Problem(config[0], torch.bfloat16, device=device, kahan=True)
    before = ([bits(p).clone() for p in problem.params],
              [[state_bits(s).clone() for s in states] for states in problem.states])
    problem.run(implementation(backend), config, found_inf=torch.ones(1, device=device),
                stochastic=True)
    assert all(torch.equal(bits(p), b) for p, b in zip(problem.params, before[0]))
    for states, saved in zip(problem.states, before[1]):
        assert all(torch.equal(state_bits(s), b) for s, b in zip(states, saved))
    assert int(problem.counters.abs().sum()) == 0 and float(problem.sums.abs().sum()) == 0


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
def test_without_statistics_the_step_is_the_same(backend, device):
    config = CONFIGS[4]
    with_stats = Problem("adam", torch.bfloat16, device=device).run(
        implementation(backend), config, stochastic=True)
    without = Problem("adam", torch.bfloat16, device=device).run(
        implementation(backend), config, stochastic=True, track=False)
    for x, y in zip(with_stats.params, without.params):
        assert torch.equal(bits(x), bits(y))
    assert int(without.counters.abs().sum()) == 0


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
def test_many_tensors_in_one_call_equal_one_call_each(backend, device):
    """55 tensors of random sizes (0 and 1 included) in one call == one call per tensor."""
    g = torch.Generator().manual_seed(5)
    sizes = [0, 1] + torch.randint(0, 3000, (53,), generator=g).tolist()
    config, impl = CONFIGS[4], implementation(backend)
    fresh = Problem("adam", torch.bfloat16, sizes=sizes, device=device)
    alone = [fresh.only(i) for i in range(len(sizes))]
    together = fresh.run(impl, config, stochastic=True)
    for i, single in enumerate(alone):
        single.run(impl, config, stochastic=True)
        assert torch.equal(bits(single.params[0]), bits(together.params[i])), f"tensor {i}"
        assert torch.equal(single.counters[1].cpu(), together.counters[i + 1].cpu()), f"tensor {i}"


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("special_at", [None, 2500, 5000], ids=lambda s: f"special{s}")
def test_wide_depths_and_late_specials(backend, device, dtype, special_at):
    """Parameters spread over 2^-30 .. 2^10 put update depths in most of the 64 bins (the CPU's
    vector paths count 32 of them in one stream, a window that moves to where the bins are,
    and, where a group has any, the rest in another); a non-finite value in a later group sends
    just that group to the CPU's general path, and a zero or subnormal one does not."""
    config = CONFIGS[4]
    sizes = [3 * 1920 + 13, 515]
    problems = [Problem("adam", dtype, sizes=sizes, device=d) for d in (device, "cpu")]
    g = torch.Generator().manual_seed(7)
    for i, n in enumerate(sizes):
        scale = 2.0 ** torch.randint(-30, 11, (n,), generator=g).float()
        p = torch.randn(n, generator=g) * scale
        if special_at is not None and i == 0:
            p[special_at:special_at + 3] = torch.tensor([float("inf"), 0.0, 1e-40])
        for problem in problems:
            problem.params[i] = p.to(dtype).to(problem.params[i].device, copy=True)
    ours = problems[0].run(implementation(backend), config)
    ref = problems[1].run(REFERENCE, config)
    assert_same(ours, ref)
    assert int((ref.counters[1, Layout.DEPTH:] > 0).sum()) > 16


@pytest.mark.parametrize("backend,device", KERNEL_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_depth_window_moves(backend, device, dtype):
    """The CPU's vector paths count 32 depth bins in a window that starts at bin 32 and moves
    to where a tensor's bins are (depth_window.h). Updates at bins 12..18 for 20 groups, then at
    46..50 for 20: the window moves down after the first groups (whose bins the outside stream
    counts, below the window), then up (above it), and every bin lands where the reference puts
    it. SGD with lr 1 and no momentum, so d = -g: bin = log2|g| - log2|p| + mantissa bits + 40."""
    n, half = 40 * 256, 20 * 256
    mantissa = {torch.float32: 23, torch.bfloat16: 7, torch.float16: 10}[dtype]
    p_exponent = 14 if dtype == torch.float16 else 0  # fp16's g reaches only 2^-24 .. 2^15
    gen = torch.Generator().manual_seed(3)
    first_bin = torch.where(torch.arange(n) < half, 12, 46) + torch.randint(0, 5, (n,),
                                                                           generator=gen)
    g_exponent = first_bin - (mantissa + 40) + p_exponent
    g = (1 + torch.rand(n, generator=gen)) * 2.0 ** g_exponent.float()
    g = torch.where(torch.rand(n, generator=gen) < 0.5, -g, g)
    p = (1 + 0.5 * torch.rand(n, generator=gen)) * 2.0 ** p_exponent
    config = ("sgd", dict(lr=1.0, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False))
    problems = [Problem("sgd", dtype, sizes=[n], device=d) for d in (device, "cpu")]
    for problem in problems:
        problem.params[0] = p.to(dtype).to(problem.device, copy=True)
        problem.grads = lambda step, specials=False, dev=problem.device: [g.to(dtype).to(dev)]
    ours = problems[0].run(implementation(backend), config, steps=1)
    ref = problems[1].run(REFERENCE, config, steps=1)
    assert_same(ours, ref)
    depth = ref.counters[1, Layout.DEPTH:]  # rounding g and p to dtype moves a few up a bin
    assert int(depth[12:18].sum()) == half and int(depth[46:52].sum()) == n - half


@pytest.mark.parametrize("backend,device", [c for c in KERNEL_CASES if c.values[0] == "cpu"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_flush_denormal_mode_gives_the_same_step(backend, device, dtype):
    """Under torch.set_flush_denormal(True) (denormals-are-zero) the AVX-512 kernel hands its
    work to the loops that classify on bits: without subnormal values the bits and counters
    are those of the default mode."""
    config = CONFIGS[4]
    default = Problem("adam", dtype, device=device).run(implementation(backend), config)
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-denormal mode")
    try:
        flushed = Problem("adam", dtype, device=device).run(implementation(backend), config)
    finally:
        torch.set_flush_denormal(False)
    assert_same(flushed, default)


@pytest.mark.parametrize("backend,device", [c for c in KERNEL_CASES if c.values[0] == "cpu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_large_calls_split_into_larger_chunks_count_the_same(backend, device, dtype):
    """A call of ~3M elements on 2 threads runs in chunks above the 64K minimum (the CPU driver
    sizes them to the call); chunk ends that fall inside tensors, at odd offsets, still give
    the reference's bits and counters, and every element is counted once."""
    sizes = [1_500_007, 1_200_001, 70_001, 3]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ours = Problem("adam", dtype, sizes=sizes, device=device).run(
            implementation(backend), CONFIGS[4])
    finally:
        torch.set_num_threads(threads)
    ref = Problem("adam", dtype, sizes=sizes).run(REFERENCE, CONFIGS[4])
    assert_same(ours, ref)
    assert ours.counters[1:, Layout.NUMEL].tolist() == [3 * n for n in sizes]  # three steps
