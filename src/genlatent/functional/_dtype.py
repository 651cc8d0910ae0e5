"""The precision losses are computed in."""

from __future__ import annotations

import torch

__all__ = ["at_least_float32", "compute_dtype"]


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """At least float32: half precision is upcast, float64 is kept (the promotion of all)."""
    result = torch.float32
    for dtype in dtypes:
        result = torch.promote_types(result, dtype)
    return result


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """float32 for half precision (the outputs of autocast), float64 kept as it is."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()
