"""The optional linear projection in and out of the scalar quantizers (FSQ, LFQ)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ProjectedQuantizer", "project"]


def project(rows: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(rows)`` in the promoted dtype of both, so float16 rows meet float32 weights.

    Autocast is off here: under bfloat16 autocast the projection to the quantized channels
    would round them to 8 bits of mantissa and move codes across their boundaries, so
    ``encode`` would not give the tokens it gives in float32 (the layers are small).
    """
    dtype = torch.promote_types(rows.dtype, layer.weight.dtype)
    with torch.autocast(device_type=rows.device.type, enabled=False):
        bias = None if layer.bias is None else layer.bias.to(dtype)
        return F.linear(rows.to(dtype), layer.weight.to(dtype), bias)


class ProjectedQuantizer(nn.Module):
    """The projection pair of a scalar quantizer: ``dim`` channels to its ``width`` and back.

    `FSQ` and `LFQ` quantize ``width`` channels (levels, bits); when their inputs have
    another ``dim``, ``project_in`` maps the rows to ``width`` and ``project_out`` the codes
    back to ``dim``, both learned through the straight-through codes. With ``dim ==
    width`` both are ``None`` and rows pass through.
    """

    project_in: nn.Linear | None
    project_out: nn.Linear | None

    def _init_projections(
        self,
        dim: int,
        width: int,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        self.project_in = self.project_out = None
        if dim != width:
            self.project_in = nn.Linear(dim, width, device=device, dtype=dtype)
            self.project_out = nn.Linear(width, dim, device=device, dtype=dtype)

    def _project_in(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows $(N, D)$ to the quantized width $(N, C)$."""
        return rows if self.project_in is None else project(rows, self.project_in)

    def _output(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes $(N, C)$ back to $(N, D)$."""
        return codes if self.project_out is None else project(codes, self.project_out)

    def _code_dtype(self) -> torch.dtype:
        """The dtype `decode` builds codes in: float32, or ``project_out``'s."""
        return torch.float32 if self.project_out is None else self.project_out.weight.dtype
