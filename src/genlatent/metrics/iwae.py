"""The importance-weighted lower bound on log p(x) of a VAE (Burda et al. 2016)."""

from __future__ import annotations

import math

import torch
from einops import rearrange

from genlatent._protocols import GaussianLatentModel
from genlatent._validation import (
    check_floating,
    check_positive_int,
    check_reduction,
    require_methods,
)
from genlatent.functional._reduce import reduce_batch
from genlatent.functional.importance import log_importance_weights, standard_normal_draws
from genlatent.functional.likelihood import fit_decoder_output

__all__ = ["CHUNK_ROWS", "iwae_bound"]

CHUNK_ROWS = 16384
"""Decoder rows per call that `iwae_bound` aims at when ``chunk_size`` is ``None``."""


def iwae_bound(
    model: GaussianLatentModel,
    x: torch.Tensor,
    *,
    num_samples: int,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "none",
) -> torch.Tensor:
    r"""Importance-weighted lower bound $\mathcal{L}_k(x) \le \log p(x)$, in nats.

    The bound of Burda, Grosse and Salakhutdinov (2016, eq. 8), with $k$ = ``num_samples``
    latents drawn from the encoder's posterior $q(z \mid x) = \mathcal{N}(\mu,
    \operatorname{diag}\sigma^2)$:

    $$\mathcal{L}_k(x) = \log \frac{1}{k} \sum_{i=1}^{k}
      \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)}
      = \operatorname{logsumexp}_i \log w_i - \log k,
      \qquad z_i = \mu + \sigma \odot \varepsilon_i,$$

    with $\log w_i = \log p(x \mid z_i) + \log \mathcal{N}(z_i; 0, I)
    - \log \mathcal{N}(z_i; \mu, \operatorname{diag}\sigma^2)$, where $\log p(x \mid z)$ is
    the model's likelihood (``model.likelihood``, a name `log_likelihood` takes); a model whose
    ``prior`` attribute is a module (a `VampPrior`) has $\log p(z_i)$ from its
    ``log_prob`` in place of $\log \mathcal{N}(z_i; 0, I)$. The weights come
    from `log_importance_weights`, the maths `iwae_loss` (the training objective of
    ``VAE.loss(x, iwae_samples=k)``) uses too: with one generator the two give the same
    number.
    $\mathbb{E}[\mathcal{L}_k]$ is non-decreasing in $k$ and tends to $\log p(x)$
    (Burda et al., theorem 1). $\mathcal{L}_1$ is the ELBO with a Monte Carlo KL term,
    $\log p(x \mid z) - (\log q(z \mid x) - \log p(z))$: its expectation is the ELBO of
    `vae_loss`, which uses the closed-form KL, but a single draw differs from it.

    **Sign**: this returns the bound itself, a log-likelihood estimate (usually negative
    for image data); the negative log-likelihood estimate, the number papers report as
    "NLL" or "IWAE NLL", is ``-iwae_bound(...)`` (as `evaluate_vae` reports it).

    **Noise and chunking**: sample $i$ uses the $i$-th draw of shape $(B, D)$ from
    ``generator``, so $\mathcal{L}_1$ sees exactly the noise of ``model(x,
    generator=generator)``, and the result does not depend on ``chunk_size`` (up to
    rounding). The samples are decoded ``chunk_size`` at a time (by default enough for
    about `CHUNK_ROWS` $= 16384$ decoder rows, $\lceil 16384 / B \rceil$), the decoder seeing
    $(\text{chunk} \cdot B, D)$ latents, and combined with a running logsumexp, so
    memory is that of a batch of ``chunk_size`` $\cdot B$ whatever $k$ is (for
    $k = 5000$ as in the paper's evaluation).

    **Cost**: the decoder's $k \cdot B$ rows dominate. Around it, each chunk costs one
    noise draw per sample, the likelihood of ``x`` broadcast over the chunk (for the
    Bernoulli, one batched matrix-vector product and one softplus pass over the logits;
    ``x`` is never copied $k$ times) and two norms of the latents. The value checks of
    `set_validate_args` run on the first chunk only.

    This function neither switches the model to ``eval()`` nor disables gradients (the
    bound is also the IWAE training objective; with gradients, memory grows with $k$):
    call it under ``torch.no_grad()`` to evaluate, or use `evaluate_vae`. ``x`` must be
    on the model's device.

    Args:
        model: a `VAE`, or any `GaussianLatentModel` (``encode``, ``decode``,
            ``likelihood``); its encoder gives ``(mean, log_var)`` of $q(z \mid x)$.
        x: a batch of data, in $[0, 1]$ for a Bernoulli likelihood.
        num_samples: $k \ge 1$, importance samples per example.
        chunk_size: samples decoded at once, at least 1 (capped at $k$); ``None`` picks
            $\lceil$ `CHUNK_ROWS` $/ B \rceil$. Larger chunks mean fewer, larger
            operations, which run faster, and more memory (for MNIST, 3 kB per row of
            each $(\text{chunk} \cdot B, 784)$ float32 temporary: 50 MB at the default).
        generator: source of the noise $\varepsilon_i$, on the device of ``x``.
        reduction: ``"none"`` gives one value per example, ``"sum"`` adds them over
            the batch, ``"mean"`` averages them.

    Returns:
        $\mathcal{L}_k(x)$ in nats (a log-likelihood, not its negative), in the dtype
        of the encoder's output.

    Raises:
        TypeError: if ``model`` lacks ``encode``, ``decode`` or ``likelihood``, ``x`` is not
            a floating-point tensor, or
            ``num_samples``/``chunk_size`` not an int.
        ValueError: if ``num_samples`` or ``chunk_size`` is below 1, ``reduction`` is
            unknown, ``x`` has no batch dimension, or the encoder output is not $(B, D)$.

    Shape:
        - x: $(B, *)$, e.g. $(B, 1, 28, 28)$
        - output: $(B,)$ for ``"none"``, else $()$

    Example:
        >>> import torch
        >>> from genlatent import VAE, MLPDecoder, MLPEncoder
        >>> _ = torch.manual_seed(0)
        >>> vae = VAE(MLPEncoder(6, 8, 2), MLPDecoder(2, 8, 6))
        >>> x = torch.rand(3, 6)
        >>> with torch.no_grad():
        ...     bound = iwae_bound(vae, x, num_samples=100, chunk_size=32)
        >>> bound.shape
        torch.Size([3])
        >>> bool((bound < 0).all())  # log p(x) of grey levels under Bernoullis is negative
        True
    """
    require_methods(model, ("encode", "decode"), "the IWAE bound", attributes=("likelihood",))
    check_floating("x", x)
    if x.ndim < 1:
        raise ValueError("x must have a batch dimension (B, *), got a scalar")
    num_samples = check_positive_int("num_samples", num_samples)
    if chunk_size is None:
        chunk_size = max(1, -(-CHUNK_ROWS // max(1, x.shape[0])))
    chunk_size = check_positive_int("chunk_size", chunk_size)
    check_reduction(reduction)

    mean, log_var = model.encode(x)
    batch = x.shape[0]
    if mean.ndim != 2 or mean.shape[0] != batch or log_var.shape != mean.shape:
        raise ValueError(
            f"the encoder must return mean and log_var of shape (B, D) with B={batch}, "
            f"got {tuple(mean.shape)} and {tuple(log_var.shape)}"
        )
    std = torch.exp(0.5 * log_var)
    prior = getattr(model, "prior", None)  # None: N(0, I); else a VampPrior-like module

    def chunk_logsumexp(count: int, validate: bool | None) -> torch.Tensor:
        # draw i of the chunk is the i-th (B, D) draw from the generator, whatever the chunking
        eps = standard_normal_draws(
            count, mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
        )
        z = torch.addcmul(mean, std, eps)  # mean + std * eps, (c, B, D), sample-major
        # decoded example-major, (B c) rows: the (B, c, V) output is then laid out as the
        # likelihood's batched product over examples reads it, and only the D-wide latents
        # are reordered, not the V-wide output
        output = fit_decoder_output(model.decode(rearrange(z, "c b d -> (b c) d")), x)
        weights = log_importance_weights(
            x,
            output.unflatten(0, (batch, count)).transpose(0, 1),
            z,
            mean,
            log_var,
            likelihood=model.likelihood,
            noise=eps,
            log_prior=None if prior is None else prior.log_prob(z, model.encode),
            validate=validate,
        )
        return torch.logsumexp(weights.log_weights, dim=0)

    # x's values are checked once, with the first chunk (None: as set_validate_args says)
    total = chunk_logsumexp(min(chunk_size, num_samples), None)
    for start in range(chunk_size, num_samples, chunk_size):
        count = min(chunk_size, num_samples - start)
        total = torch.logaddexp(total, chunk_logsumexp(count, False))
    return reduce_batch(total - math.log(num_samples), reduction)
