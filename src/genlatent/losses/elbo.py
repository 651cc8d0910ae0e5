"""The negative evidence lower bound of a VAE with a Gaussian posterior."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from genlatent._validation import check_floating, check_reduction
from genlatent.functional._reduce import reduce_batch
from genlatent.functional.gaussian import gaussian_kl
from genlatent.functional.likelihood import check_likelihood, log_likelihood

__all__ = ["VAELoss", "vae_loss"]


class VAELoss(NamedTuple):
    """The negative ELBO and its two parts, each reduced the same way."""

    loss: torch.Tensor
    """``reconstruction_loss + beta * kl``: the quantity to minimise."""
    reconstruction_loss: torch.Tensor
    r"""$-\log p(x \mid z)$ summed over every data dimension, in nats."""
    kl: torch.Tensor
    r"""$\mathrm{KL}(q(z \mid x) \,\Vert\, \mathcal{N}(0, I))$ summed over the latent, in nats."""


def vae_loss(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    beta: float = 1.0,
    likelihood: str = "bernoulli",
    reduction: str = "mean",
) -> VAELoss:
    r"""Negative ELBO: reconstruction term plus $\beta$ times the KL to the prior.

    For one example, with $z \sim q(z \mid x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$,

    $$\mathcal{L}(x) = \underbrace{-\log p(x \mid z)}_{\text{reconstruction}}
      + \beta\,\underbrace{\mathrm{KL}(q(z \mid x) \,\Vert\, \mathcal{N}(0, I))}_{\text{kl}}
      \;\ge\; -\log p(x) \quad (\beta = 1).$$

    Both terms are **summed** over their dimensions (every pixel, every latent unit), as the
    bound requires; ``reduction`` then acts over the batch only. With ``beta=1`` and
    ``reduction="sum"`` this equals the tutorial's loss
    ``F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") + KLD``, but is
    computed from logits, so saturated decoders give finite values.

    Args:
        x: the data, in $[0, 1]$ for the Bernoulli likelihood.
        decoder_output: the likelihood's parameters for ``x``: Bernoulli logits, or with
            ``likelihood="gaussian"`` the mean of a unit-variance Gaussian.
        mean: the posterior mean $\mu$.
        log_var: the posterior log-variance $\log\sigma^2$.
        beta: weight of the KL term ($\beta$-VAE, Higgins et al. 2017); 1 gives the ELBO.
        likelihood: ``"bernoulli"`` (binary cross-entropy from logits) or ``"gaussian"``
            (unit variance: half the squared error plus $\tfrac{1}{2}\log 2\pi$ per value).
        reduction: ``"none"`` gives one value per example $(B,)$, ``"sum"`` adds them,
            ``"mean"`` averages them (nats per example, the usual number to report).

    Returns:
        ``VAELoss(loss, reconstruction_loss, kl)``.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if the shapes disagree, or ``likelihood``, ``reduction`` or ``beta``
            is not valid; while `set_validate_args` is on, also on NaN or infinity in an
            input or (Bernoulli) ``x`` outside $[0, 1]$.

    Shape:
        - x, decoder_output: $(B, *)$
        - mean, log_var: $(B, D)$
        - outputs: $(B,)$ for ``"none"``, else $()$

    Example:
        >>> import math, torch
        >>> x = torch.rand(8, 784)
        >>> out = vae_loss(x, torch.zeros(8, 784), torch.zeros(8, 20), torch.zeros(8, 20))
        >>> math.isclose(out.loss.item(), 784 * math.log(2), rel_tol=1e-6)  # KL = 0 at the prior
        True
    """
    check_floating("x", x)
    check_floating("decoder_output", decoder_output)
    check_floating("mean", mean)
    check_floating("log_var", log_var)
    check_likelihood(likelihood)
    check_reduction(reduction)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number, got {beta!r}")
    if x.shape != decoder_output.shape:
        raise ValueError(
            f"decoder_output must have the shape of x {tuple(x.shape)}, "
            f"got {tuple(decoder_output.shape)}"
        )
    if mean.ndim != 2 or x.ndim == 0 or mean.shape[0] != x.shape[0]:
        raise ValueError(
            f"mean must have shape (B, D) with B = x.shape[0] = {x.shape[0] if x.ndim else '?'}, "
            f"got {tuple(mean.shape)}"
        )
    reconstruction = -log_likelihood(x, decoder_output, likelihood)
    kl = gaussian_kl(mean, log_var, reduction="none")
    return VAELoss(
        loss=reduce_batch(reconstruction + beta * kl, reduction),
        reconstruction_loss=reduce_batch(reconstruction, reduction),
        kl=reduce_batch(kl, reduction),
    )
