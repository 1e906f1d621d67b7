"""Benchmarks: `pytest bench --benchmark-only` measures; `pytest bench --benchmark-disable` runs
every case once at a tiny size (part of make test, so the suite never rots)."""

from __future__ import annotations

import pytest

TINY = 4096


@pytest.fixture
def size(request):
    """The case's element count, or TINY when benchmarks are disabled."""
    if request.config.getoption("benchmark_disable"):
        return TINY
    return request.param

