r"""SimVQ as a module: a frozen random codebook through a learned linear map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlatent._validation import (
    check_non_negative_float,
    check_optional_positive_int,
    check_positive_int,
)
from genlatent.functional.quantize import nearest_code
from genlatent.functional.simvq import simvq_codebook
from genlatent.nn._layout import (
    check_indices,
    indices_from_rows,
    output_from_rows,
    rows_of,
    to_layout,
)
from genlatent.nn.quantize import _quantize_rows
from genlatent.nn.quantizer import QuantizerOutput
from genlatent.pretrained import PretrainedMixin

__all__ = ["SimVQ"]


class SimVQ(nn.Module, PretrainedMixin):
    r"""SimVQ (Zhu et al. 2024): vector quantization against $E = C W^\top$, $C$ frozen.

    The codebook is a frozen random basis $C$ ($K \times D$, drawn $\mathcal{N}(0, 1/D)$
    as the paper's code does, held in the buffer ``basis``) mapped by one learned linear
    layer $W$ (``transform``, $D \times D$, no bias): $E_k = W c_k$
    (`genlatent.functional.simvq`). Quantization is VQ-VAE's against $E$:

    $$k = \operatorname*{arg\,min}_i \lVert z - E_i \rVert^2, \qquad
      L = \lVert \operatorname{sg}[z] - E_k \rVert^2
        + \beta \lVert z - \operatorname{sg}[E_k] \rVert^2,$$

    with the straight-through gradient to $z$. The codebook term trains $W$, which moves
    every code at once, so unselected codes follow the data instead of dying (the paper's
    remedy for codebook collapse); $C$ never changes. ``terms`` holds ``codebook`` and
    ``commitment``; ``codebook`` (a property) is $E$ as searched. No state changes in a
    training step: the map learns by gradient, so data-parallel replicas stay equal
    through DistributedDataParallel's gradient all-reduce.

    **Shapes, worked through.** $K = 512$, $D = 16$, channel-first input
    $(2, 16, 8, 8)$: packed to rows $(128, 16)$, searched against $E$ $(512, 16)$, indices
    $(128,)$ unpacked to $(2, 8, 8)$, quantized back to $(2, 16, 8, 8)$, counts $(512,)$.

    Args:
        codebook_size: $K$ codes.
        dim: $D$, the input channels (and the basis' width).
        commitment_weight: $\beta \ge 0$ (0.25, as VQ-VAE's).
        channel_last: inputs are $(B, \ldots, D)$ rather than $(B, D, \ldots)$.
        chunk_size: search the codes in blocks of this many rows (memory), or ``None``.
        device: where to create the basis and the map.
        dtype: their dtype.

    Raises:
        TypeError: on an argument of the wrong type.
        ValueError: on ``codebook_size`` or ``dim`` < 1, or a negative ``commitment_weight``.

    Shape:
        - inputs: $(B, D, *)$ with up to three trailing dims, or $(B, *, D)$ if ``channel_last``
        - quantized: same as inputs
        - indices: $(B, *)$

    Example:
        >>> import torch
        >>> simvq = SimVQ(512, 16)
        >>> out = simvq(torch.randn(2, 16, 8, 8))
        >>> out.quantized.shape, out.indices.shape, sorted(out.terms)
        (torch.Size([2, 16, 8, 8]), torch.Size([2, 8, 8]), ['codebook', 'commitment'])
        >>> [name for name, _ in simvq.named_parameters()]  # the basis is not a parameter
        ['transform.weight']
        >>> torch.equal(simvq.decode(out.indices), out.quantized)
        True
    """

    basis: torch.Tensor

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        commitment_weight: float = 0.25,
        channel_last: bool = False,
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.codebook_size = check_positive_int("codebook_size", codebook_size)
        self.dim = check_positive_int("dim", dim)
        self.commitment_weight = check_non_negative_float("commitment_weight", commitment_weight)
        self.channel_last = bool(channel_last)
        self.chunk_size = check_optional_positive_int("chunk_size", chunk_size)
        self.register_buffer("basis", torch.empty(codebook_size, dim, device=device, dtype=dtype))
        self.transform = nn.Linear(dim, dim, bias=False, device=device, dtype=dtype)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the basis from $\\mathcal{N}(0, 1/D)$ and reset the map (PyTorch's default)."""
        self.basis.normal_(0.0, self.dim**-0.5)
        self.transform.reset_parameters()

    def extra_repr(self) -> str:
        parts = [
            f"codebook_size={self.codebook_size}",
            f"dim={self.dim}",
            f"commitment_weight={self.commitment_weight}",
        ]
        if self.channel_last:
            parts.append("channel_last=True")
        if self.chunk_size is not None:
            parts.append(f"chunk_size={self.chunk_size}")
        return ", ".join(parts)

    @property
    def codebook(self) -> torch.Tensor:
        """The implied codebook $E = C W^\\top$, $(K, D)$, in at least float32."""
        return simvq_codebook(self.basis, self.transform.weight)

    def forward(self, inputs: torch.Tensor) -> QuantizerOutput:
        """Quantize ``inputs`` against $E$ (no state changes: the map learns by gradient).

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            `QuantizerOutput` ``(quantized, indices, loss, terms, counts)``; ``terms``
            holds ``codebook`` and ``commitment``; ``quantized`` has the inputs' dtype.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count.
        """
        rows, packed_shapes = rows_of(inputs, self.dim, channel_last=self.channel_last)
        result = _quantize_rows(
            rows,
            self.codebook,
            commitment_weight=self.commitment_weight,
            ema=False,
            chunk_size=self.chunk_size,
        )
        return output_from_rows(
            result.quantized.to(inputs.dtype),
            result.indices,
            packed_shapes,
            channel_last=self.channel_last,
            loss=result.loss,
            terms=result.terms,
            counts=result.counts,
        )

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return the index of each vector's nearest code $E_k$ (no state to touch).

        Args:
            inputs: $(B, D, *)$ or, with ``channel_last``, $(B, *, D)$.

        Returns:
            int64 indices $(B, *)$, the same as ``self(inputs).indices``.

        Raises:
            TypeError: if ``inputs`` is not a floating-point tensor.
            ValueError: if ``inputs`` has the wrong rank or channel count.
        """
        rows, packed_shapes = rows_of(inputs, self.dim, channel_last=self.channel_last)
        with torch.no_grad():  # the forward's nearest-code search, without its losses
            indices = nearest_code(rows, self.codebook, chunk_size=self.chunk_size)
        return indices_from_rows(indices, packed_shapes)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Map indices to their codes $E_k = W c_k$ (the inverse of `encode`).

        Args:
            indices: int tensor $(B,)$ or $(B, *)$ (up to three trailing dims), values in
                $[0, K)$ (checked: this reads the values).

        Returns:
            The codes in at least float32, channel-first $(B, D, *)$ or $(B, *, D)$ with
            ``channel_last``; differentiable with respect to the map.

        Raises:
            TypeError: if ``indices`` is not an integer tensor.
            ValueError: on a rank outside 1..4 or an index outside $[0, K)$.
        """
        indices = check_indices(indices, self.codebook_size)
        return to_layout(F.embedding(indices, self.codebook), channel_last=self.channel_last)
