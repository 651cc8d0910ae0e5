"""Diagonal Gaussian densities and equal-weight mixtures of them (the VampPrior's density)."""

from __future__ import annotations

import math

import torch

from genlatent._validation import check_floating

__all__ = ["gaussian_log_prob", "gaussian_mixture_log_prob"]

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(
    z: torch.Tensor,
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""$\log \mathcal{N}(z; \mu, \operatorname{diag}\sigma^2)$, summed over the last dimension.

    $$\log q(z) = -\tfrac{1}{2}\sum_{j=1}^{D}\left(\log 2\pi + \log\sigma_j^2
      + \varepsilon_j^2\right), \qquad \varepsilon = (z - \mu)/\sigma;$$

    pass ``noise`` $= \varepsilon$ when $z = \mu + \sigma \odot \varepsilon$ was drawn so:
    it is used as is, exact for a posterior so narrow that $z - \mu$ loses digits.

    Shape:
        - z, noise: $(*, D)$, broadcastable with mean and log_var
        - output: $(*)$

    Example:
        >>> gaussian_log_prob(torch.zeros(2, 3), torch.zeros(3), torch.zeros(3))  # -3/2 log 2 pi
        tensor([-2.7568, -2.7568])
    """
    if noise is None:
        noise = (z - mean) * torch.exp(-0.5 * log_var)
    squares = torch.linalg.vector_norm(noise, dim=-1).square()
    return -0.5 * (log_var.sum(dim=-1) + squares + z.shape[-1] * _LOG_2PI)


def gaussian_mixture_log_prob(
    z: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor
) -> torch.Tensor:
    r"""Log-density of $z$ under the equal-weight mixture of $K$ diagonal Gaussians.

    $$\log p(z) = \operatorname{logsumexp}_{k=1}^{K} \log \mathcal{N}(z; \mu_k,
      \operatorname{diag}\sigma_k^2) - \log K,$$

    the VampPrior's density (Tomczak and Welling 2018, eq. 9) when $(\mu_k, \sigma_k^2)$
    are the encoder's posteriors of the $K$ pseudo-inputs. Each component's quadratic form
    is expanded, $\sum_j (z_j - \mu_{kj})^2/\sigma_{kj}^2 = \sum_j z_j^2 a_{kj}
    - 2 z_j \mu_{kj} a_{kj} + \mu_{kj}^2 a_{kj}$ with $a = 1/\sigma^2$, so that all
    $N \times K$ pairs cost two matrix products and no $(N, K, D)$ temporary (as the
    distances of vector quantization are computed). The expansion rounds at the scale of
    $z_j^2 a_{kj}$: in float32 a component whose variance is far below $z_j^2$ loses
    digits; compute in float64 where that matters.

    Args:
        z: the points, $(*, D)$.
        means: the components' means $\mu_k$, $(K, D)$.
        log_vars: their log-variances, $(K, D)$.

    Returns:
        $\log p(z)$, shape $(*)$.

    Raises:
        TypeError: if an input is not floating-point.
        ValueError: if ``means`` and ``log_vars`` are not one $(K, D)$ shape matching ``z``.

    Example:
        >>> z = torch.zeros(4, 2)
        >>> one = gaussian_mixture_log_prob(z, torch.zeros(1, 2), torch.zeros(1, 2))
        >>> torch.allclose(one, gaussian_log_prob(z, torch.zeros(2), torch.zeros(2)))
        True
    """
    for name, tensor in (("z", z), ("means", means), ("log_vars", log_vars)):
        check_floating(name, tensor)
    if means.ndim != 2 or log_vars.shape != means.shape or z.shape[-1:] != means.shape[-1:]:
        raise ValueError(
            f"means and log_vars must have one shape (K, D) with D = z.shape[-1] = "
            f"{z.shape[-1] if z.ndim else '?'}, got {tuple(means.shape)} and "
            f"{tuple(log_vars.shape)}"
        )
    precision = torch.exp(-log_vars)  # (K, D)
    quadratic = (
        (z * z) @ precision.T
        - 2.0 * (z @ (means * precision).T)
        + (means.pow(2) * precision).sum(dim=-1)
    )  # (*, K)
    log_components = -0.5 * (log_vars.sum(dim=-1) + quadratic + z.shape[-1] * _LOG_2PI)
    return torch.logsumexp(log_components, dim=-1) - math.log(means.shape[0])
