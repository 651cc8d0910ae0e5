"""What one training step minimises for each kind of model, with its named parts."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from genlatent._validation import validate_args
from genlatent.losses.elbo import vae_loss
from genlatent.losses.vq import vqvae_loss

__all__ = ["StepLoss", "vae_objective", "vqvae_objective"]


class StepLoss(NamedTuple):
    """The scalar to minimise and its parts (batch means), for logging and fault reports."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


def vae_objective(
    model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None
) -> StepLoss:
    """Negative ELBO in nats per example (reconstruction summed over pixels + KL).

    The model is called through ``forward`` so that DistributedDataParallel sees it.
    The KL is computed in float32 whatever the autocast dtype. The value checks of
    `set_validate_args` are off here: the training loop checks each term for finiteness
    itself and names the one that failed.
    """
    with validate_args(False):
        out = model(x, generator=generator)
        likelihood = getattr(_unwrap(model), "likelihood", "bernoulli")
        losses = vae_loss(
            x.float(),
            out.logits.float(),
            out.mean.float(),
            out.log_var.float(),
            likelihood=likelihood,
        )
    return StepLoss(losses.loss, {"reconstruction": losses.reconstruction, "kl": losses.kl})


def vqvae_objective(
    model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None
) -> StepLoss:
    """Reconstruction MSE (per-pixel mean) plus the quantizer's codebook and commitment terms.

    The quantizer's distances and terms are float32 whatever the autocast dtype. As in
    `vae_objective`, the value checks are off; a non-finite batch leaves an EMA codebook
    untouched (see `VectorQuantizer`).
    """
    del generator
    with validate_args(False):
        out = model(x)
        losses = vqvae_loss(x.float(), out.reconstruction.float(), out.loss.float())
    return StepLoss(
        losses.loss,
        {
            "reconstruction": losses.reconstruction,
            "codebook": out.codebook_loss.float(),
            "commitment": out.commitment_loss.float(),
            "perplexity": out.perplexity.float(),
        },
    )


def _unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel or ``torch.compile``."""
    inner = getattr(model, "module", model)
    return getattr(inner, "_orig_mod", inner)
