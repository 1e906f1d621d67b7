"""Backend choice, clear errors for bad input before anything runs, import without extensions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import bitkernels as bk
from bitkernels.backends import BackendUnavailable


def test_available_reports_every_backend_with_a_reason():
    status = bk.backends.available()
    assert set(status) == set(bk.backends.NAMES)
    assert status["reference"].available
    assert status["cpu"].available, status["cpu"].reason  # make test builds the extension
    for s in status.values():
        assert s.reason
    if torch.version.cuda is None:
        assert not status["cuda"] and "not a CUDA build" in status["cuda"].reason


def test_cpu_isa_is_limited_and_restored():
    isas = bk.backends.cpu_isas()
    assert isas[0] == "base" and set(isas) <= {"base", "x86-64-v3", "x86-64-v4",
                                                         "x86-64-v4+avx512bf16"}
    assert bk.backends.cpu_isa() == isas[-1]  # no limit: the best this CPU runs
    try:
        for isa in isas:
            assert bk.backends.cpu_isa(isa) == isa == bk.backends.cpu_isa()
        with pytest.raises(ValueError, match='limit must be "native" or one of .*base'):
            bk.backends.cpu_isa("avx9")
    finally:
        assert bk.backends.cpu_isa("native") == isas[-1]


def test_auto_picks_the_compiled_cpu_backend():
    assert bk.backends.resolve("auto", torch.device("cpu"))[0] == "cpu"


@pytest.mark.parametrize("name", ["Cpu", "numpy", ""])
def test_unknown_backend(name):
    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        bk.bitflip_stats(torch.zeros(3), torch.zeros(3), backend=name)


def test_backend_for_another_device():
    with pytest.raises(BackendUnavailable, match="backend='cuda' is unavailable: .*CUDA tensors"):
        bk.bitflip_stats(torch.zeros(3), torch.zeros(3), backend="cuda")
    assert issubclass(BackendUnavailable, ValueError)


def _bad_calls():
    f32, bf = torch.zeros(4), torch.zeros(4, dtype=torch.bfloat16)
    return [
        (dict(old=[0.0], new=f32), TypeError, "old must be a torch.Tensor"),
        (dict(old=f32, new=f32.numpy()), TypeError, "new must be a torch.Tensor"),
        (dict(old=torch.zeros(4, dtype=torch.int32), new=torch.zeros(4, dtype=torch.int32)),
         TypeError, "old must be a floating-point tensor"),
        (dict(old=torch.zeros(4, dtype=torch.float64), new=torch.zeros(4, dtype=torch.float64)),
         TypeError, "old.dtype must be one of"),
        (dict(old=f32, new=bf), TypeError,
         "new has dtype torch.bfloat16 but old has torch.float32"),
        (dict(old=f32, new=torch.zeros(5)), ValueError, r"new has shape \(5,\) but old has \(4,\)"),
        (dict(old=f32, new=torch.zeros(2, 2)), ValueError, "new has shape"),
        (dict(old=f32, new=f32, update=torch.zeros(3)), ValueError, "update has shape"),
        (dict(old=f32, new=f32, update=torch.zeros(4, dtype=torch.int64)), TypeError,
         "update must be a floating-point tensor"),
        (dict(old=f32, new=f32, update=[0.0] * 4), TypeError, "update must be a torch.Tensor"),
        (dict(old=f32.to_sparse(), new=f32.to_sparse()), TypeError, "old must be a dense"),
        (dict(old=f32, new=f32, out=bk.BitStats(torch.bfloat16)), TypeError,
         "out holds bf16 statistics but old is fp32"),
        (dict(old=f32, new=f32, out=torch.zeros(102)), TypeError, "out must be a BitStats"),
        (dict(old=f32, new=f32, out=bk.BitStats(torch.float32, "meta")), ValueError,
         "out is on meta but old is on cpu"),
        (dict(old=f32, new=f32.to("meta")), ValueError, "new is on meta but old is on cpu"),
        (dict(old=f32, new=f32, backend=3), TypeError, "backend must be a string"),
    ]


@pytest.mark.parametrize("kwargs,error,message", _bad_calls())
def test_bad_input_is_rejected_before_anything_runs(kwargs, error, message):
    out = kwargs.get("out")
    before = out.counters.clone() if isinstance(out, bk.BitStats) else None
    with pytest.raises(error, match=message):
        bk.bitflip_stats(**kwargs)
    if before is not None and out.device.type != "meta":
        assert torch.equal(out.counters, before)


def test_compiled_op_checks_its_arguments():
    """Direct torch.ops callers get TypeError/ValueError from the C++ checks, not a crash."""
    bk.backends._ext.load_cpu()
    op = torch.ops.bitkernels.bitflip_stats
    counters, sums = torch.zeros(102, dtype=torch.int64), torch.zeros(4, dtype=torch.float64)
    f32 = torch.zeros(4)
    with pytest.raises(TypeError, match="old must be float32, bfloat16 or float16"):
        op(torch.zeros(4, dtype=torch.int32), torch.zeros(4, dtype=torch.int32), None,
           counters, sums)
    with pytest.raises(TypeError, match="new has dtype"):
        op(f32, f32.half(), None, counters, sums)
    with pytest.raises(ValueError, match="new has shape"):
        op(f32, torch.zeros(5), None, counters, sums)
    with pytest.raises(TypeError, match="update must be float32"):
        op(f32, f32, f32.double(), counters, sums)
    with pytest.raises(ValueError, match="counters must be a contiguous 1-D tensor of 102"):
        op(f32, f32, None, torch.zeros(101, dtype=torch.int64), sums)
    with pytest.raises(TypeError, match="sums must be float64"):
        op(f32, f32, None, counters, torch.zeros(4))
    assert int(counters.abs().sum()) == 0


def _run(code: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_works_without_the_compiled_extension():
    """Block bitkernels._C: import succeeds, available() says why, auto falls back with a
    warning and still gives the reference answer."""
    result = _run("""
        import sys, warnings
        sys.modules["bitkernels._C"] = None  # makes `import bitkernels._C` fail
        import torch, bitkernels as bk
        status = bk.backends.available()["cpu"]
        assert not status.available and "bitkernels._C is not built" in status.reason, status
        old = torch.randn(100); new = old + 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stats = bk.bitflip_stats(old, new)
        assert any("pure-torch reference" in str(w.message) for w in caught), caught
        assert stats.equal(bk.bitflip_stats(old, new, backend="reference"))
        try:
            bk.bitflip_stats(old, new, backend="cpu")
        except ValueError as e:
            assert "bitkernels._C is not built" in str(e)
        else:
            raise AssertionError("backend='cpu' should be unavailable")
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_triton_on_cpu_needs_the_interpreter():
    result = _run("""
        import torch, bitkernels as bk
        status = bk.backends.available()["triton"]
        assert not status.available and "TRITON_INTERPRET=1" in status.reason, status
        try:
            bk.bitflip_stats(torch.zeros(3), torch.zeros(3), backend="triton")
        except ValueError as e:
            assert "TRITON_INTERPRET=1" in str(e)
        else:
            raise AssertionError("triton on CPU tensors should need the interpreter")
        print("ok")
    """, unset=("TRITON_INTERPRET",))
    if torch.cuda.is_available():
        pytest.skip("with a GPU, available() reports Triton on CUDA tensors")
    assert result.returncode == 0, result.stderr
