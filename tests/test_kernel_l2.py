"""bench/kernel_l2.sh, the AVX-512 step's timing harness (one thread, data in L2), builds and
runs every rule: it calls the loops of csrc/cpu/step_loops.h directly, without torch, so
nothing else would notice when their signatures change under it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bitkernels import backends

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found"),
    pytest.mark.skipif("x86-64-v4" not in backends.cpu_isas(),
                       reason="the harness runs the AVX-512 kernels: this CPU has no AVX-512"),
]


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
def test_kernel_l2_builds_and_runs(tmp_path, fmt):
    env = {**os.environ, "KERNEL_L2_DIR": str(tmp_path), "CXXFLAGS": "-O1"}
    for rule in ("adamw", "sgd", "lion"):
        # The script builds, then runs the first rule; the binary runs the others.
        cmd = ([str(ROOT / "bench" / "kernel_l2.sh"), fmt] if rule == "adamw"
               else [str(tmp_path / f"kernel_l2_{fmt}")]) + [rule, "4096", "2"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"fingerprint {rule} {fmt} n=4096" in result.stdout
        assert f"{rule} {fmt} n=4096: statistics" in result.stdout
