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

`Quantizer` and `QuantizerOutput` are defined in `genlatent._protocols` (so that code
above the models needs no ``genlatent.nn``) and re-exported here and by `genlatent.nn`.
"""

from __future__ import annotations

import torch

from genlatent._protocols import Quantizer, QuantizerOutput

__all__ = ["Quantizer", "QuantizerOutput", "check_quantizer"]


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
