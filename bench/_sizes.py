"""Size parametrization shared by the benchmark files."""

import pytest


def sizes(*values: int):
    return pytest.mark.parametrize("size", values, indirect=True,
                                   ids=[f"{v // 1024}K" if v < 1 << 20 else f"{v >> 20}M"
                                        for v in values])
