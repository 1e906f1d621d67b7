"""The command line entry points run and print what they promise."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "bitkernels", *args], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_precision_prints_the_lr_table():
    out = run_cli("precision", "--numel", "4096")
    for needle in ("fp32", "bf16", "fp16", "1e-05", "unchanged%", "lost%"):
        assert needle in out, out


def test_backends_lists_every_backend():
    out = run_cli("backends")
    for name in ("reference", "cpu", "cuda", "triton", "cpu kernels:"):
        assert name in out
