"""The Triton kernels compile for sm_80 and sm_90 on a machine without a GPU, as the CUDA
sources do (test_cuda_compile.py). The interpreter that runs them here never calls Triton's
compiler: until this test, a module global the compiler rejects (annotated `X: tl.constexpr = 1`
instead of `X = tl.constexpr(1)`, an error since Triton 3.2) kept the whole Triton backend from
compiling on any GPU, with every test here passing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

triton = pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("arch", [80, 90])
def test_triton_kernels_compile_without_a_gpu(arch, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the Triton tests compile and run the kernels on it")
    try:
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.compiler import ASTSource  # noqa: F401
    except ImportError as e:
        pytest.skip(f"this Triton has no ahead-of-time compile API: {e}")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")  # compile, do not reuse earlier runs
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "triton_offline_compile.py"),
                             str(arch)], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-6000:]
    assert result.stdout.count("compiled") == 22, result.stdout
