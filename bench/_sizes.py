"""Size parametrization, the device and the synchronized call shared by the benchmark files."""

import pytest
import torch

from bitkernels.roofline import size_label

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
STEP_SIZES = (1 << 12, 1 << 16, 1 << 20, 1 << 24, 1 << 26)


def sizes(*values: int):
    return pytest.mark.parametrize("size", values, indirect=True,
                                   ids=[size_label(v) for v in values])


def synced(fn):
    """fn followed, on a GPU, by a device synchronization: pytest-benchmark reads the host's
    clock, and a kernel launch returns long before the kernel is done. (Every round then pays
    one synchronization; `python -m bitkernels bench` times batches instead.)"""
    if DEVICE.type != "cuda":
        return fn

    def call(*args, **kwargs):
        out = fn(*args, **kwargs)
        torch.cuda.synchronize(DEVICE)
        return out
    return call
