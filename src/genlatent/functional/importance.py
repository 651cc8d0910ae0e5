"""Importance weights of a Gaussian posterior: the maths of the IWAE bound and objective."""

from __future__ import annotations

from typing import NamedTuple

import torch

from genlatent._validation import check_floating, check_positive_int
from genlatent.functional.likelihood import log_likelihood
from genlatent.functional.mixture import gaussian_log_prob

__all__ = [
    "ImportanceWeights",
    "gaussian_log_density_ratio",
    "log_importance_weights",
    "standard_normal_draws",
]


class ImportanceWeights(NamedTuple):
    """What `log_importance_weights` returns, each $(K, B)$."""

    log_weights: torch.Tensor
    r"""$\log w_i = \log p(x \mid z_i) + \log p(z_i) - \log q(z_i \mid x)$."""
    log_likelihood: torch.Tensor
    r"""$\log p(x \mid z_i)$, the first of the three terms."""


def standard_normal_draws(
    num_samples: int,
    shape: torch.Size | tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""``num_samples`` draws of $\varepsilon \sim \mathcal{N}(0, I)$ of ``shape``, stacked.

    Draw $i$ is exactly what the $i$-th of ``num_samples`` successive calls
    ``torch.randn(shape, generator=generator)`` would return (each fills its own slice of
    one preallocated tensor), so the first draw is the noise of `reparameterize` with the
    same generator, and a sequence of calls gives the same numbers however it is split.

    Shape:
        - output: $(K, *)$, $K$ = ``num_samples``

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> draws = standard_normal_draws(3, (2, 4), generator=g)
        >>> first = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
        >>> draws.shape, torch.equal(draws[0], first)
        (torch.Size([3, 2, 4]), True)
    """
    num_samples = check_positive_int("num_samples", num_samples)
    draws = torch.empty((num_samples, *shape), device=device, dtype=dtype)
    for draw in draws:
        draw.normal_(generator=generator)
    return draws


def gaussian_log_density_ratio(
    z: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""$\log p(z) - \log q(z \mid x)$ for a Gaussian posterior and prior, summed over $D$.

    With $p(z) = \mathcal{N}(0, I)$ and
    $q(z \mid x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$,

    $$\log\frac{p(z)}{q(z \mid x)} = \tfrac{1}{2}\sum_{j=1}^{D}
      \left(\log\sigma_j^2 + \varepsilon_j^2 - z_j^2\right),
      \qquad \varepsilon = (z - \mu) / \sigma,$$

    the $\log 2\pi$ terms cancelling. Its expectation under $q$ is $-\mathrm{KL}(q \,\Vert\,
    p)$ (the Monte Carlo KL of the IWAE bound). Pass ``noise`` $= \varepsilon$ when $z$ was
    drawn as $\mu + \sigma \odot \varepsilon$: it is then used as is, exact even for a
    posterior so narrow that $z - \mu$ loses digits.

    Shape:
        - z, noise: $(*, B, D)$, any leading sample dimensions
        - mean, log_var: $(B, D)$
        - output: $(*, B)$

    Example:
        >>> z = torch.zeros(1, 3)
        >>> gaussian_log_density_ratio(z, z, z)  # q is the prior: ratio 1
        tensor([0.])
    """
    if noise is None:
        noise = (z - mean) * torch.exp(-0.5 * log_var)
    # squared norms in one fused pass each (no squared temporary of the (K, B, D) draws)
    squares = torch.linalg.vector_norm(noise, dim=-1).square()
    squares = squares - torch.linalg.vector_norm(z, dim=-1).square()
    return 0.5 * (log_var.sum(dim=-1) + squares)


def log_importance_weights(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    z: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    likelihood: str = "bernoulli",
    noise: torch.Tensor | None = None,
    log_prior: torch.Tensor | None = None,
    validate: bool | None = None,
) -> ImportanceWeights:
    r"""Log importance weights of $K$ latents per example under a Gaussian posterior.

    For the $K$ latents $z_i \sim q(z \mid x) = \mathcal{N}(\mu,
    \operatorname{diag}\sigma^2)$ of each example (Burda et al. 2016, eq. 8),

    $$\log w_i = \log p(x \mid z_i) + \log \mathcal{N}(z_i; 0, I)
      - \log \mathcal{N}(z_i; \mu, \operatorname{diag}\sigma^2),$$

    with $\log p(x \mid z)$ from `log_likelihood` (``x`` broadcast over the $K$ samples,
    not copied) and the prior ratio from `gaussian_log_density_ratio`; for another prior
    (a VampPrior) pass its ``log_prior`` $= \log p(z_i)$, and $\log q$ comes from
    `gaussian_log_prob`. The IWAE bound is
    $\operatorname{logsumexp}_i \log w_i - \log K$; both `iwae_loss` and `iwae_bound`
    compute it from here.

    Args:
        x: the data, $(B, *)$.
        decoder_output: the decoder's output for every $z_i$, $(K, B, P C, *)$.
        z: the latents, $(K, B, D)$.
        mean: the posterior mean $\mu$, $(B, D)$.
        log_var: the posterior log-variance, $(B, D)$.
        likelihood: a name `log_likelihood` takes.
        noise: the $\varepsilon_i$ with $z_i = \mu + \sigma \odot \varepsilon_i$, if known.
        log_prior: $\log p(z_i)$, $(K, B)$, in place of the standard normal prior.
        validate: run the checks that read values (NaN, ranges) for this call: ``None``
            follows `set_validate_args`, ``False`` skips them (inputs checked already).

    Returns:
        `ImportanceWeights` ``(log_weights, log_likelihood)``, each $(K, B)$.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if ``z`` is not $(K, B, D)$ for ``mean`` of shape $(B, D)$, or as
            `log_likelihood` raises.

    Example:
        >>> x, z = torch.ones(2, 3), torch.zeros(4, 2, 5)
        >>> weights = log_importance_weights(x, torch.zeros(4, 2, 3), z, z[0], z[0])
        >>> weights.log_weights.shape  # (K, B); here log w = 3 log(1/2)
        torch.Size([4, 2])
    """
    for name, tensor in (("z", z), ("mean", mean), ("log_var", log_var)):
        check_floating(name, tensor)
    if mean.ndim != 2 or log_var.shape != mean.shape:
        raise ValueError(
            f"mean and log_var must have one shape (B, D), got {tuple(mean.shape)} and "
            f"{tuple(log_var.shape)}"
        )
    if z.ndim != 3 or z.shape[1:] != mean.shape:
        raise ValueError(
            f"z must have shape (K, B, D) with (B, D) = {tuple(mean.shape)}, got {tuple(z.shape)}"
        )
    if noise is not None and noise.shape != z.shape:
        raise ValueError(
            f"noise must have the shape of z {tuple(z.shape)}, got {tuple(noise.shape)}"
        )
    if log_prior is not None and log_prior.shape != z.shape[:2]:
        raise ValueError(
            f"log_prior must have shape (K, B) = {tuple(z.shape[:2])}, got {tuple(log_prior.shape)}"
        )
    log_px = log_likelihood(x, decoder_output, likelihood, validate=validate)
    if log_prior is None:
        log_weights = log_px + gaussian_log_density_ratio(z, mean, log_var, noise=noise)
    else:
        log_weights = log_px + log_prior - gaussian_log_prob(z, mean, log_var, noise=noise)
    return ImportanceWeights(log_weights, log_px)
