"""Size parametrization and the device shared by the benchmark files."""

import pytest
import torch

from bitkernels.roofline import size_label

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
STEP_SIZES = (1 << 12, 1 << 16, 1 << 20, 1 << 24, 1 << 26)


def sizes(*values: int):
    return pytest.mark.parametrize("size", values, indirect=True,
                                   ids=[size_label(v) for v in values])
