"""What the quantizer compositions share: checking their parts and merging their outputs.

`ResidualQuantizer` and `GroupedQuantizer` hold a sequence of quantizers (stages or
groups) and speak to them through the public contract only (``codebook_size``,
``forward``, ``encode``, ``decode``, and the ``channel_last`` layout convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genlatent.nn._layout import check_indices
from genlatent.nn.quantizer import QuantizerOutput, check_quantizer

__all__ = ["check_part_output", "check_parts", "stacked_indices", "sum_losses"]


def check_parts(parts: object, name: str, owner: str) -> tuple[list[nn.Module], int, bool]:
    """Check a non-empty sequence of quantizers of one ``codebook_size`` and one layout.

    Returns:
        The parts as a list, their common ``codebook_size`` and ``channel_last``.

    Raises:
        TypeError: if ``parts`` is not a sequence of quantizers (each named by position).
        ValueError: if it is empty, or the parts differ in ``codebook_size`` or layout.
    """
    if isinstance(parts, nn.Module) or not isinstance(parts, Sequence):
        raise TypeError(f"{name} must be a sequence of quantizers, got {type(parts).__name__}")
    if len(parts) == 0:
        raise ValueError(f"{name} must hold at least one quantizer, got an empty sequence")
    for index, part in enumerate(parts):
        check_quantizer(part, f"{name}[{index}]")
    sizes = [int(part.codebook_size) for part in parts]
    if len(set(sizes)) > 1:
        raise ValueError(
            f"{name} must share one codebook_size ({owner} stacks their counts as (S, K)), "
            f"got {sizes}"
        )
    layouts = [bool(getattr(part, "channel_last", False)) for part in parts]
    if len(set(layouts)) > 1:
        raise ValueError(f"{name} must share one layout, got channel_last={layouts}")
    return list(parts), sizes[0], layouts[0]


def check_part_output(out: QuantizerOutput, name: str, index: int) -> None:
    """Require a single-stage part: counts $(K,)$ (a cheap shape check)."""
    if out.counts.ndim != 1:
        raise ValueError(
            f"{name}[{index}] must give one index per position (counts of shape (K,)), "
            f"got counts of shape {tuple(out.counts.shape)}"
        )


def sum_losses(
    outputs: Sequence[QuantizerOutput],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The parts' losses summed, and their terms summed by name (in float32)."""
    loss = outputs[0].loss.float()
    for out in outputs[1:]:
        loss = loss + out.loss.float()
    terms: dict[str, torch.Tensor] = {}
    for out in outputs:
        for term, value in out.terms.items():
            terms[term] = terms[term] + value.float() if term in terms else value.float()
    return loss, terms


def stacked_indices(
    indices: object, codebook_size: int, count: int, count_name: str, *, dropped: bool = False
) -> torch.Tensor:
    """Check indices $(B, *, S)$ for `decode`: integer, last dim ``count``, values in range."""
    return check_indices(
        indices, codebook_size, stages=count, dropped=dropped, stages_name=count_name
    )
