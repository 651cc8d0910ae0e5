r"""Finite scalar quantization as a module: `FSQ`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genlatent._validation import check_positive_int
from genlatent.functional.fsq import check_levels, fsq_codes_from_indices, fsq_rows
from genlatent.functional.quantize import code_counts
from genlatent.nn._layout import (
    check_indices,
    from_rows,
    indices_from_rows,
    rows_of,
    to_layout,
)
from genlatent.nn._projection import ProjectedQuantizer
from genlatent.nn.quantizer import QuantizerOutput
from genlatent.pretrained import PretrainedMixin

__all__ = ["FSQ"]


class FSQ(ProjectedQuantizer, PretrainedMixin):
    r"""Finite scalar quantization (Mentzer et al. 2023): round each channel to a few levels.

    Each of the $C$ = ``len(levels)`` channels is bounded with $\tanh$ to an interval that
    holds ``levels[c]`` integers, rounded with the straight-through estimator and scaled to
    $[-1, 1]$ (`fsq_codes` has the formulas, including the half-level offset
    of even level counts, as the paper's reference code):

    $$\hat z_c = \operatorname{round}\big(h_c \tanh(z_c + s_c) - o_c\big)
        / \lfloor L_c / 2 \rfloor .$$

    The implied codebook is the grid of $K = \prod_c L_c$ points (``codebook_size``); there
    is no codebook to learn and no auxiliary loss (``loss`` is 0 and ``terms`` is empty),
    so FSQ cannot collapse. Indices are mixed-radix numbers, the first channel the least
    significant digit: $k = \sum_c d_c \prod_{c'<c} L_{c'}$ with digits $d_c \in [0, L_c)$.

    The paper's recommended levels (its table 1) per codebook size:

    | $K$ | $2^8$ | $2^{10}$ | $2^{12}$ | $2^{14}$ | $2^{16}$ |
    | --- | --- | --- | --- | --- | --- |
    | levels | [8, 6, 5] | [8, 5, 5, 5] | [7, 5, 5, 5, 5] | [8, 8, 8, 6, 5] | [8, 8, 8, 5, 5, 5] |

    With ``dim`` $\ne C$ the inputs are first projected to $C$ channels by a linear layer
    (``project_in``) and the codes back to ``dim`` by another (``project_out``), both
    learned by the model's loss through the straight-through round.

    **Gradient.** Straight-through on the round only: $\partial \hat z_c / \partial z_c =
    h_c (1 - \tanh^2(z_c + s_c)) / \lfloor L_c/2 \rfloor$, the derivative of the bound.

    **Shapes, worked through.** Levels $[8, 6, 5]$ ($C = 3$, $K = 240$), channel-first
    input $(2, 3, 8, 8)$: rearranged and packed to $N = 128$ rows $(128, 3)$, quantized to
    $(128, 3)$ and indices $(128,)$, unpacked to quantized $(2, 3, 8, 8)$ and indices
    $(2, 8, 8)$. With ``dim=16``, the input $(2, 16, 8, 8)$ becomes rows $(128, 16)$,
    projected to $(128, 3)$, quantized, projected back to $(128, 16)$. $(B, D)$,
    $(B, D, L)$ and $(B, D, T, H, W)$ (channel-last: $(B, *, D)$) work the same way.

    Args:
        levels: the number of levels $L_c \ge 2$ of each channel.
        dim: input channels $D$; ``None`` (default) for $D = C$ = ``len(levels)``, with
            no projection.
        channel_last: inputs are $(B, \ldots, D)$ rather than $(B, D, \ldots)$.
        device: where to create the projections.
        dtype: the projections' dtype.

    Raises:
        TypeError: if ``levels`` is not a sequence of ints or ``dim`` not an int.
        ValueError: on an empty ``levels``, a level < 2, or ``dim`` < 1.

    Shape:
        - inputs: $(B, D, *)$ with up to three trailing dims, or $(B, *, D)$ if ``channel_last``
        - quantized: same as inputs
        - indices: $(B, *)$

    Example:
        >>> import torch
        >>> fsq = FSQ([8, 5, 5, 5])
        >>> fsq.codebook_size
        1000
        >>> out = fsq(torch.randn(2, 4, 8, 8))
        >>> out.quantized.shape, out.indices.shape, out.loss.item(), out.terms
        (torch.Size([2, 4, 8, 8]), torch.Size([2, 8, 8]), 0.0, {})
        >>> torch.equal(fsq.decode(out.indices), out.quantized)
        True
        >>> fsq.decode(torch.tensor([0, 999]))  # the grid's corners
        tensor([[-1.0000, -1.0000, -1.0000, -1.0000],
                [ 0.7500,  1.0000,  1.0000,  1.0000]])
    """

    def __init__(
        self,
        levels: Sequence[int],
        *,
        dim: int | None = None,
        channel_last: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.levels = check_levels(levels)
        num_levels = len(self.levels)
        self.dim = num_levels if dim is None else check_positive_int("dim", dim)
        self.codebook_size = math.prod(self.levels)
        self.channel_last = bool(channel_last)
        self._init_projections(self.dim, num_levels, device, dtype)

    def extra_repr(self) -> str:
        parts = [f"levels={list(self.levels)}", f"codebook_size={self.codebook_size}"]
        if self.project_in is not None:
            parts.append(f"dim={self.dim}")
        if self.channel_last:
            parts.append("channel_last=True")
        return ", ".join(parts)

    def _codes(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows $(N, D)$ to grid codes $(N, C)$ (straight-through) and indices $(N,)$."""
        codes, indices = fsq_rows(self._project_in(rows), self.levels)
        assert codes is not None
        return codes, indices

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        """Quantize ``inputs`` to the level grid (no state changes: FSQ has none).

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            `QuantizerOutput` ``(quantized, indices, loss, terms, counts)``: ``quantized``
            in the inputs' dtype, ``loss`` a float32 zero, ``terms`` empty, ``counts``
            $(K,)$.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count.
        """
        rows, packed_shapes = rows_of(inputs, self.dim, channel_last=self.channel_last)
        codes, flat_indices = self._codes(rows)
        quantized = self._output(codes).to(inputs.dtype)
        indices = indices_from_rows(flat_indices, packed_shapes)
        return QuantizerOutput(
            quantized=from_rows(quantized, packed_shapes, channel_last=self.channel_last),
            indices=indices,
            loss=torch.zeros((), dtype=torch.float32, device=inputs.device),
            terms={},
            counts=code_counts(flat_indices, self.codebook_size),
        )

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return the mixed-radix index of each vector's grid code.

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            int64 indices $(B, *)$, the same as ``self(inputs).indices``.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count.
        """
        rows, packed_shapes = rows_of(inputs, self.dim, channel_last=self.channel_last)
        with torch.no_grad():
            _, flat_indices = fsq_rows(self._project_in(rows), self.levels, codes=False)
        return indices_from_rows(flat_indices, packed_shapes)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Map indices back to grid codes (projected to ``dim`` channels if ``dim`` was given).

        Args:
            indices: int tensor $(B,)$ or $(B, *)$ (up to three trailing dims), values in
                $[0, K)$ (checked: this reads the values).

        Returns:
            Float32 codes (the projection's dtype with ``dim``), channel-first $(B, D, *)$
            or $(B, *, D)$ with ``channel_last``: equal to ``self(inputs).quantized`` for
            ``indices = self.encode(inputs)``.

        Raises:
            TypeError: if ``indices`` is not an integer tensor.
            ValueError: on a rank outside 1..4 or an index outside $[0, K)$.
        """
        indices = check_indices(indices, self.codebook_size)
        codes = fsq_codes_from_indices(indices, self.levels, dtype=self._code_dtype())
        vectors = self._output(codes)
        return to_layout(vectors, channel_last=self.channel_last)
