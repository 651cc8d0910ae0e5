"""The optional linear projection in and out of the scalar quantizers (FSQ, LFQ)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["project"]


def project(rows: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(rows)`` in the promoted dtype of both, so float16 rows meet float32 weights.

    Under autocast ``F.linear`` casts both again, to the autocast dtype.
    """
    dtype = torch.promote_types(rows.dtype, layer.weight.dtype)
    bias = None if layer.bias is None else layer.bias.to(dtype)
    return F.linear(rows.to(dtype), layer.weight.to(dtype), bias)
