"""The VQ-VAE objective: reconstruction error plus the quantizer's terms."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from genlatent._deprecation import add_renamed_field
from genlatent._validation import (
    check_finite,
    check_floating,
    check_reduction,
    check_same_shape,
)
from genlatent.functional._reduce import reduce_batch, sum_non_batch

__all__ = ["VQVAELoss", "vqvae_loss"]


class VQVAELoss(NamedTuple):
    """The VQ-VAE loss and its parts, each reduced the same way.

    `vqvae_loss` fills the first three fields; `VQVAE.loss` also fills ``terms`` and
    ``code_counts`` from its quantizer's output, so a trainer logs them by name.
    """

    loss: torch.Tensor
    """``reconstruction_loss + quantizer_loss``: the quantity to minimise."""
    reconstruction_loss: torch.Tensor
    """Mean squared error per example (averaged over its pixels)."""
    quantizer_loss: torch.Tensor
    """The quantizer's loss (for VQ: the codebook and weighted commitment terms)."""
    terms: dict[str, torch.Tensor] = {}  # noqa: RUF012 (never mutated)
    """The quantizer's named terms (unweighted, batch means), for logging."""
    code_counts: torch.Tensor | None = None
    """This batch's code counts $(K,)$ (or $(S, K)$ per stage), for usage statistics."""


# Old names of 0.1, kept for one release (see docs/guides/migration.md).
add_renamed_field(VQVAELoss, "reconstruction", "reconstruction_loss")
add_renamed_field(VQVAELoss, "quantizer", "quantizer_loss")


def vqvae_loss(
    x: torch.Tensor,
    reconstruction: torch.Tensor,
    quantizer_loss: torch.Tensor,
    *,
    reduction: str = "mean",
) -> VQVAELoss:
    r"""VQ-VAE objective (van den Oord et al. 2017, eq. 3) with a squared-error decoder.

    $$\mathcal{L} = \underbrace{\tfrac{1}{P}\lVert x - \hat{x}\rVert^2}_{\text{reconstruction}}
      + \underbrace{\lVert \operatorname{sg}[z_e] - e\rVert^2
      + \beta\,\lVert z_e - \operatorname{sg}[e]\rVert^2}_{\text{quantizer}},$$

    where $P$ is the number of values per example, so the reconstruction term is a
    per-pixel mean as in the tutorial's ``F.mse_loss``. ``quantizer_loss`` is the
    ``loss`` field of the quantizer's output, already averaged over the batch; it is
    shared equally among the examples, so ``"sum"`` is $B$ times ``"mean"`` and ``"none"``
    sums to ``"sum"``.

    Args:
        x: the images.
        reconstruction: the decoder's output, same shape.
        quantizer_loss: a scalar from the quantizer.
        reduction: ``"none"``, ``"sum"`` or ``"mean"`` over the batch.

    Returns:
        ``VQVAELoss(loss, reconstruction_loss, quantizer_loss)``.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: on mismatched shapes, a non-scalar ``quantizer_loss``, a scalar ``x``,
            an unknown ``reduction``, or (while `set_validate_args` is on) NaN or infinity
            in an input.

    Shape:
        - x, reconstruction: $(B, *)$
        - quantizer_loss: $()$
        - outputs: $(B,)$ for ``"none"``, else $()$

    Example:
        >>> import torch
        >>> x = torch.zeros(4, 3, 8, 8)
        >>> vqvae_loss(x, x + 0.5, torch.tensor(0.1)).loss
        tensor(0.3500)
    """
    check_floating("x", x)
    check_floating("reconstruction", reconstruction)
    check_same_shape("x", x, "reconstruction", reconstruction)
    check_floating("quantizer_loss", quantizer_loss)
    check_reduction(reduction)
    if quantizer_loss.ndim != 0:
        raise ValueError(
            f"quantizer_loss must be a scalar, got shape {tuple(quantizer_loss.shape)}"
        )
    if x.ndim == 0:
        raise ValueError("x must have a batch dimension (B, *), got a scalar")
    check_finite("x", x)
    check_finite("reconstruction", reconstruction)
    check_finite("quantizer_loss", quantizer_loss)
    values_per_example = max(math.prod(x.shape[1:]), 1)
    squared = sum_non_batch((x - reconstruction).pow(2)) / values_per_example
    shared = quantizer_loss.expand(x.shape[0])
    return VQVAELoss(
        loss=reduce_batch(squared + shared, reduction),
        reconstruction_loss=reduce_batch(squared, reduction),
        quantizer_loss=reduce_batch(shared, reduction),
    )
