"""Shape helpers shared by the quantizers: channel layouts to rows and back, index checks."""

from __future__ import annotations

import torch

from genlatent._protocols import QuantizerOutput
from genlatent._validation import check_floating, check_ndim

PackedShapes = tuple[int, ...]
"""The leading dims $(B, *)$ that `to_rows` flattened into $N$ rows, to undo it."""
_CHANNEL_FIRST = "(B, D), (B, D, L), (B, D, H, W) or (B, D, T, H, W)"
_CHANNEL_LAST = "(B, D), (B, N, D), (B, H, W, D) or (B, T, H, W, D)"


def check_channels(
    inputs: torch.Tensor, dim: int, *, channel_last: bool, dim_name: str = "dim"
) -> None:
    """Check a floating $(B, D, *)$ (or $(B, *, D)$) ``inputs`` with $D$ = ``dim``."""
    check_floating("inputs", inputs)
    layout = (_CHANNEL_LAST if channel_last else _CHANNEL_FIRST).replace("D", str(dim))
    check_ndim("inputs", inputs, (2, 3, 4, 5), layout)
    if inputs.shape[-1 if channel_last else 1] != dim:
        where = "last" if channel_last else "second"
        raise ValueError(
            f"inputs must have {dim_name}={dim} channels in the {where} dim, shape {layout}, "
            f"got shape {tuple(inputs.shape)}"
        )


def rows_of(
    inputs: torch.Tensor, dim: int, *, channel_last: bool, dim_name: str = "dim"
) -> tuple[torch.Tensor, PackedShapes]:
    """`check_channels`, then `to_rows`: the first step of every quantizer's forward and encode."""
    check_channels(inputs, dim, channel_last=channel_last, dim_name=dim_name)
    return to_rows(inputs, channel_last=channel_last)


def to_layout(vectors: torch.Tensor, *, channel_last: bool) -> torch.Tensor:
    """Vectors $(B, *, D)$ from a lookup to the quantizer's layout ($(B, D, *)$ unless
    ``channel_last``): the last step of every quantizer's decode."""
    return vectors if channel_last else vectors.movedim(-1, 1)


def to_rows(inputs: torch.Tensor, *, channel_last: bool) -> tuple[torch.Tensor, PackedShapes]:
    """$(B, D, *)$ (or $(B, *, D)$) to rows $(N, D)$ and the leading dims to undo it.

    A view when the memory allows it (channel-last contiguous inputs, or $(B, D)$): only
    a channel-first input with trailing dims is copied, once, to its rows.
    """
    if not channel_last:
        inputs = inputs.movedim(1, -1)
    return inputs.reshape(-1, inputs.shape[-1]), tuple(inputs.shape[:-1])


def from_rows(
    rows: torch.Tensor, packed_shapes: PackedShapes, *, channel_last: bool
) -> torch.Tensor:
    """Undo `to_rows`: rows $(N, D)$ back to the input layout (a view, never a copy)."""
    return to_layout(rows.view(*packed_shapes, rows.shape[-1]), channel_last=channel_last)


def indices_from_rows(flat: torch.Tensor, packed_shapes: PackedShapes) -> torch.Tensor:
    """Row indices $(N,)$ (or $(N, S)$) back to $(B, *)$ (or $(B, *, S)$)."""
    return flat.reshape(*packed_shapes, *flat.shape[1:])


def output_from_rows(
    quantized: torch.Tensor,
    indices: torch.Tensor,
    packed_shapes: PackedShapes,
    *,
    channel_last: bool,
    loss: torch.Tensor,
    terms: dict[str, torch.Tensor],
    counts: torch.Tensor,
) -> QuantizerOutput:
    """A row quantizer's `QuantizerOutput`: quantized rows and row indices unpacked."""
    return QuantizerOutput(
        quantized=from_rows(quantized, packed_shapes, channel_last=channel_last),
        indices=indices_from_rows(indices, packed_shapes),
        loss=loss,
        terms=terms,
        counts=counts,
    )


_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_indices(
    indices: object,
    codebook_size: int,
    *,
    stages: int | None = None,
    dropped: bool = False,
    stages_name: str = "num_quantizers",
) -> torch.Tensor:
    """Check an integer index tensor of rank 1..4 (+1 with ``stages``), values in $[0, K)$
    (or -1, a stage that quantize dropout left out, with ``dropped``); ``stages_name``
    names the count of the last dim in the error."""
    if not isinstance(indices, torch.Tensor):
        raise TypeError(f"indices must be a torch.Tensor, got {type(indices).__name__}")
    if indices.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"indices must have an integer dtype, got {indices.dtype}")
    if stages is None:
        check_ndim("indices", indices, (1, 2, 3, 4), "(B,), (B, L), (B, H, W) or (B, T, H, W)")
    else:
        check_ndim("indices", indices, (2, 3, 4, 5), f"(B, *, {stages}) with up to 3 dims in *")
        if indices.shape[-1] != stages:
            raise ValueError(
                f"indices must have {stages_name}={stages} in the last dim, "
                f"got shape {tuple(indices.shape)}"
            )
    if indices.numel() > 0:
        low, high = int(indices.min()), int(indices.max())
        if low < (-1 if dropped else 0) or high >= codebook_size:
            extra = " or -1 for a dropped stage" if dropped else ""
            raise ValueError(
                f"indices must be in [0, {codebook_size - 1}] "
                f"(codebook_size={codebook_size}){extra}, got values from {low} to {high}"
            )
    return indices.long()
