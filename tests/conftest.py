import os

import torch

# Triton kernels run on CPU tensors only under the interpreter, and Triton reads the variable
# when kernels are decorated, i.e. when bitkernels.backends.triton is first imported: set it
# before any test imports it. On a machine with a GPU, Triton runs compiled on CUDA tensors.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("default", deadline=None, max_examples=60, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _cpu_isa(request):
    """Limits the CPU kernels to the test's cpu_isa mark, and lifts the limit afterwards."""
    mark = request.node.get_closest_marker("cpu_isa")
    if mark is None:
        yield
        return
    from bitkernels import backends
    backends.cpu_isa(mark.args[0])
    try:
        yield
    finally:
        backends.cpu_isa("native")
