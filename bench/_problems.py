"""The one-parameter problem every step benchmark times: weights ~ N(0, 0.02), gradients
~ N(0, 1e-3), in the parameter dtype."""

import torch


def parameter(size: int, dtype: torch.dtype, seed: int = 0) -> torch.nn.Parameter:
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter((torch.randn(size, generator=g) * 0.02).to(dtype))
    p.grad = (torch.randn(size, generator=g) * 1e-3).to(dtype)
    return p
