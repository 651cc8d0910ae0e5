"""Batch reductions shared by the losses."""

from __future__ import annotations

import torch

from genlatent._validation import check_reduction

__all__ = ["reduce_batch", "sum_non_batch"]


def reduce_batch(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a per-example loss of shape ``(B,)`` over the batch.

    ``"none"`` returns it unchanged, ``"sum"`` adds over the batch and ``"mean"`` averages
    over it (an empty batch averages to ``nan``, as ``torch.mean`` does).
    """
    reduction = check_reduction(reduction)
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    return per_example.mean()


def sum_non_batch(values: torch.Tensor) -> torch.Tensor:
    """Sum ``(B, *)`` over every dimension but the first, giving ``(B,)``; works for ``B = 0``."""
    if values.ndim <= 1:
        return values
    return values.sum(dim=tuple(range(1, values.ndim)))
