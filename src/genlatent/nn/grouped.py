r"""Grouped quantization: `GroupedQuantizer`, one quantizer per group of channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from genlatent._validation import check_floating, check_ndim
from genlatent.nn._composition import (
    check_part_output,
    check_parts,
    stacked_indices,
    sum_losses,
)
from genlatent.nn.quantizer import Quantizer, QuantizerOutput
from genlatent.pretrained import PretrainedMixin

__all__ = ["GroupedQuantizer"]


class GroupedQuantizer(nn.Module, PretrainedMixin):
    r"""Split the channels into $G$ equal groups and quantize each with its own quantizer.

    For $D$ input channels and $G$ = ``len(groups)`` quantizers $Q_0, \ldots, Q_{G-1}$,
    each taking $D / G$ channels,

    $$z = [z^{(0)}; \ldots; z^{(G-1)}], \qquad z_q = [Q_0(z^{(0)}); \ldots;
      Q_{G-1}(z^{(G-1)})],$$

    the concatenation along the channel dim (as vector-quantize-pytorch's grouped
    residual VQ, or the grouped codebooks of wav2vec 2.0). Each group keeps its own
    gradient estimator, loss and state; ``loss`` is the sum of the groups' losses,
    ``terms`` their sums by name. Indices stack to $(B, *, G)$, counts to $(G, K)$, one
    row per group (every group must have the same ``codebook_size`` $K$ and layout, and
    give one index per position). The groups are used only through the contract, so a
    user's quantizer is a group too.

    **Shapes, worked through.** Two `LFQ` groups of $2^8$ codes and ``dim=8`` each,
    channel-first input $(2, 16, 8, 8)$: split to two $(2, 8, 8, 8)$, each quantized to
    $(2, 8, 8, 8)$ with indices $(2, 8, 8)$; concatenated back to $(2, 16, 8, 8)$,
    indices $(2, 8, 8, 2)$, counts $(2, 256)$.

    Args:
        groups: the quantizers $Q_g$ (at least one), registered as ``groups``.

    Raises:
        TypeError: if ``groups`` is not a sequence of quantizers.
        ValueError: if ``groups`` is empty or mixes codebook sizes or layouts.

    Shape:
        - inputs: $(B, D, *)$, or $(B, *, D)$ if the groups are ``channel_last``; $D$ a
          multiple of $G$
        - quantized: same as inputs
        - indices: $(B, *, G)$
        - counts: $(G, K)$

    Example:
        >>> import torch
        >>> from genlatent.nn import LFQ
        >>> grouped = GroupedQuantizer([LFQ(2**8, dim=8), LFQ(2**8, dim=8)])
        >>> out = grouped(torch.randn(2, 16, 8, 8))
        >>> out.quantized.shape, out.indices.shape, out.counts.shape
        (torch.Size([2, 16, 8, 8]), torch.Size([2, 8, 8, 2]), torch.Size([2, 256]))
        >>> torch.equal(grouped.decode(out.indices), out.quantized)
        True
    """

    def __init__(self, groups: Sequence[Quantizer]) -> None:
        super().__init__()
        parts, size, channel_last = check_parts(groups, "groups", "GroupedQuantizer")
        self.groups = nn.ModuleList(parts)
        self.num_groups = len(parts)
        self.codebook_size = size
        self.channel_last = channel_last

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}"

    def _split(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The inputs' channels in $G$ equal groups (views)."""
        check_floating("inputs", inputs)
        layout = "(B, *, D)" if self.channel_last else "(B, D, *)"
        check_ndim("inputs", inputs, (2, 3, 4, 5), f"{layout} with up to three dims in *")
        channels = inputs.shape[self._channel_dim]
        if channels % self.num_groups != 0:
            raise ValueError(
                f"inputs must have a number of channels divisible by the {self.num_groups} "
                f"groups, got shape {tuple(inputs.shape)}"
            )
        return inputs.chunk(self.num_groups, dim=self._channel_dim)

    def _groups(self) -> list[Quantizer]:
        return [cast(Quantizer, group) for group in self.groups]

    @property
    def _channel_dim(self) -> int:
        return -1 if self.channel_last else 1

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        """Quantize each group of channels with its quantizer (each updating its own state).

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last`` groups, $(B, *, D)$.

        Returns:
            `QuantizerOutput` ``(quantized, indices, loss, terms, counts)`` with indices
            $(B, *, G)$ and counts $(G, K)$; ``terms`` sums the groups' terms by name.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if the channels do not split into the groups, a group refuses
                its share, or a group gives more than one index per position.
        """
        outputs = []
        for index, (group, part) in enumerate(zip(self.groups, self._split(inputs), strict=True)):
            out = group(part)
            check_part_output(out, "groups", index)
            outputs.append(out)
        loss, terms = sum_losses(outputs)
        return QuantizerOutput(
            quantized=torch.cat([out.quantized for out in outputs], dim=self._channel_dim),
            indices=torch.stack([out.indices for out in outputs], dim=-1),
            loss=loss,
            terms=terms,
            counts=torch.stack([out.counts for out in outputs]),
        )

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Every group's indices, touching no state.

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last`` groups, $(B, *, D)$.

        Returns:
            int64 indices $(B, *, G)$, equal to ``self(inputs).indices`` in eval mode.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if the channels do not split into the groups.
        """
        parts = self._split(inputs)
        return torch.stack(
            [group.encode(part) for group, part in zip(self._groups(), parts, strict=True)], dim=-1
        )

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """The groups' codes, concatenated along the channel dim.

        Args:
            indices: int tensor $(B, G)$ or $(B, *, G)$ (up to three dims in $*$), values
                in $[0, K)$ (checked: this reads the values).

        Returns:
            The codes, channel-first $(B, D, *)$ or $(B, *, D)$ with ``channel_last``
            groups, in the dtype the groups decode to (promoted across groups).

        Raises:
            TypeError: if ``indices`` is not an integer tensor.
            ValueError: on a rank outside 2..5, a last dim other than $G$, or an index
                outside $[0, K)$.
        """
        indices = stacked_indices(indices, self.codebook_size, self.num_groups, "groups")
        codes = [group.decode(indices[..., index]) for index, group in enumerate(self._groups())]
        return torch.cat(codes, dim=self._channel_dim)
