r"""The quantizer contract: what `VQVAE`, evaluation and plots may ask of any quantizer.

A quantizer is any ``nn.Module`` with

- ``codebook_size``: the number of distinct codes $K$ (per stage, for a multi-stage one);
- ``forward(inputs) -> QuantizerOutput``: quantize, with a straight-through (or other)
  gradient to the inputs, and report the loss to add, its named terms and this batch's
  code counts;
- ``encode(inputs) -> indices`` and ``decode(indices) -> quantized``, which round-trip
  exactly: ``decode(encode(x))`` equals ``forward(x).quantized`` in value, and ``encode``
  changes no state.

State (EMA statistics, dead-code counters, k-means initialisation) may change only in a
*training step*: ``self.training and torch.is_grad_enabled()``. Inputs are channel-first
$(B, D, *)$ unless the quantizer was built with ``channel_last=True``.

`VectorQuantizer` implements the contract; so can a user's own module, with no base class:
``tests/nn/test_quantizer_contract.py`` is the suite a new implementation joins.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch

__all__ = ["Quantizer", "QuantizerOutput", "check_quantizer"]


class QuantizerOutput(NamedTuple):
    """What a quantizer's ``forward`` returns.

    Attributes:
        quantized: the quantized inputs, shaped and typed like the inputs, with the
            quantizer's gradient estimator (straight-through by default) to the inputs.
        indices: the chosen codes, int64: the input shape without the channel dim
            $(B, *)$, with a trailing stage dim $(B, *, S)$ for a multi-stage quantizer.
        loss: the scalar to add to the model's loss (zero for quantizers without one),
            float32.
        terms: the named float32 scalars that make up ``loss`` or describe it (for
            example ``{"codebook": ..., "commitment": ...}``), logged by name.
        counts: how many positions chose each code in this batch (this process's batch),
            float32, $(K,)$, or $(S, K)$ per stage; each row sums to the number of positions.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    counts: torch.Tensor


@runtime_checkable
class Quantizer(Protocol):
    """The quantizer contract as a `typing.Protocol` (see the module docstring)."""

    codebook_size: int

    def __call__(self, inputs: torch.Tensor) -> QuantizerOutput: ...

    def encode(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def decode(self, indices: torch.Tensor) -> torch.Tensor: ...


def check_quantizer(quantizer: object, name: str = "quantizer") -> None:
    """Raise a one-line ``TypeError`` naming what ``quantizer`` lacks of the contract."""
    if not isinstance(quantizer, torch.nn.Module):
        raise TypeError(f"{name} must be an nn.Module, got {type(quantizer).__name__}")
    missing = [
        attr for attr in ("codebook_size", "encode", "decode") if not hasattr(quantizer, attr)
    ]
    if missing:
        raise TypeError(
            f"{name} ({type(quantizer).__name__}) does not follow the quantizer contract: "
            f"it has no {', '.join(missing)} (see genlatent.nn.Quantizer)"
        )
    size = quantizer.codebook_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise TypeError(f"{name}.codebook_size must be a positive int, got {size!r}")
