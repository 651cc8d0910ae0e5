"""The importance-weighted objective of Burda, Grosse and Salakhutdinov (2016)."""

from __future__ import annotations

import math

import torch

from genlatent._validation import check_floating, check_reduction
from genlatent.functional._reduce import reduce_batch
from genlatent.functional.gaussian import gaussian_kl
from genlatent.functional.importance import log_importance_weights
from genlatent.functional.likelihood import check_likelihood
from genlatent.losses.elbo import VAELoss

__all__ = ["iwae_loss"]


def iwae_loss(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    z: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
    log_prior: torch.Tensor | None = None,
    likelihood: str = "bernoulli",
    reduction: str = "mean",
) -> VAELoss:
    r"""Negative IWAE bound $-\mathcal{L}_K$ from $K$ latents per example, with the ELBO's terms.

    With $K$ latents $z_i \sim q(z \mid x)$ per example stacked on a leading dimension
    and $\log w_i$ from `log_importance_weights` (Burda et al. 2016, eq. 8),

    $$-\mathcal{L}_K(x) = -\Bigl(\operatorname{logsumexp}_{i=1}^{K} \log w_i
      - \log K\Bigr) \;\ge\; -\log p(x),$$

    tighter as $K$ grows. Its gradient weights each sample by its normalised importance
    weight (Burda et al., eq. 14). At $K = 1$ it is the single-sample negative ELBO with the
    Monte Carlo KL $\log q(z \mid x) - \log p(z)$ at the same $z$ (`vae_loss` uses the
    closed-form KL instead, equal in expectation). Computed in the inputs' dtype: pass
    float32 (as `VAE.loss` does) under autocast.

    Args:
        x: the data, $(B, *)$.
        decoder_output: the decoder's output for every latent, $(K, B, P C, *)$.
        z: the latents, $(K, B, D)$.
        mean: the posterior mean $\mu$, $(B, D)$.
        log_var: the posterior log-variance $\log\sigma^2$, $(B, D)$.
        noise: the $\varepsilon$ with $z = \mu + \sigma \odot \varepsilon$, if known
            (exact $\log q$ for very narrow posteriors).
        log_prior: $\log p(z_i)$, $(K, B)$, for a prior other than $\mathcal{N}(0, I)$
            (a `VampPrior`); the ``kl`` reported is then the Monte Carlo estimate
            $\frac{1}{K}\sum_i \log q(z_i \mid x) - \log p(z_i)$.
        likelihood: a name `log_likelihood` takes.
        reduction: over the batch only (each $\log p(x \mid z_i)$ is summed over every
            data value, the KL over the latent, and the $K$ latents are combined by the
            logsumexp): ``"none"`` gives one value per example $(B,)$, ``"sum"`` adds
            them, ``"mean"`` averages them (nats per example).

    Returns:
        ``VAELoss(loss, reconstruction_loss, kl, elbo_loss)``: ``loss`` is
        $-\mathcal{L}_K$; ``reconstruction_loss`` is $-\log p(x \mid z_i)$ averaged over
        the $K$ latents, ``kl`` the closed-form KL and ``elbo_loss`` their sum, a
        $K$-sample estimate of the negative ELBO.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if the shapes disagree, or ``likelihood`` or ``reduction`` is unknown.

    Shape:
        - x: $(B, *)$; decoder_output: $(K, B, P C, *)$
        - z, noise: $(K, B, D)$; mean, log_var: $(B, D)$
        - outputs: $(B,)$ for ``"none"``, else $()$

    Example:
        >>> import math, torch
        >>> x, z = torch.ones(2, 3), torch.zeros(4, 2, 5)
        >>> out = iwae_loss(x, torch.zeros(4, 2, 3), z, z[0], z[0])
        >>> math.isclose(out.loss.item(), 3 * math.log(2), rel_tol=1e-6)  # all weights equal
        True
    """
    check_floating("x", x)
    check_floating("decoder_output", decoder_output)
    check_likelihood(likelihood)
    check_reduction(reduction)
    if x.ndim == 0:
        raise ValueError("x must have a batch dimension (B, *), got a scalar")
    if decoder_output.ndim != x.ndim + 1:
        raise ValueError(
            f"decoder_output must have a leading sample dimension (K, B, ...) for x of shape "
            f"{tuple(x.shape)}, got {tuple(decoder_output.shape)}"
        )
    weights = log_importance_weights(
        x, decoder_output, z, mean, log_var, likelihood=likelihood, noise=noise, log_prior=log_prior
    )
    count = weights.log_weights.shape[0]
    bound = torch.logsumexp(weights.log_weights, dim=0) - math.log(count)
    reconstruction = -weights.log_likelihood.mean(dim=0)
    if log_prior is None:
        kl = gaussian_kl(mean, log_var, reduction="none")
    else:  # log q - log p = log p(x | z) - log w, averaged over the K latents
        kl = (weights.log_likelihood - weights.log_weights).mean(dim=0)
    return VAELoss(
        loss=reduce_batch(-bound, reduction),
        reconstruction_loss=reduce_batch(reconstruction, reduction),
        kl=reduce_batch(kl, reduction),
        elbo_loss=reduce_batch(reconstruction + kl, reduction),
    )
