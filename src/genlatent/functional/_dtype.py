"""The precision losses are computed in."""

from __future__ import annotations

import torch

__all__ = ["at_least_float32"]


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """float32 for half precision (the outputs of autocast), float64 kept as it is."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()
