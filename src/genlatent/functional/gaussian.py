"""Diagonal Gaussian maths: the reparameterization trick, KL to N(0, I), log-likelihood."""

from __future__ import annotations

import math

import torch

from genlatent._validation import check_finite, check_floating, check_same_shape
from genlatent.functional._reduce import reduce_batch, sum_non_batch

__all__ = ["gaussian_kl", "gaussian_log_likelihood", "reparameterize"]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_mean_log_var(mean: torch.Tensor, log_var: torch.Tensor) -> None:
    check_floating("mean", mean)
    check_floating("log_var", log_var)
    check_same_shape("mean", mean, "log_var", log_var)
    if mean.ndim == 0:
        raise ValueError("mean must have at least 1 dim (*, D), got a scalar")
    check_finite("mean", mean)
    check_finite("log_var", log_var)


def reparameterize(
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Draw $z \sim \mathcal{N}(\mu, \operatorname{diag}(\sigma^2))$ differentiably.

    The reparameterization trick (Kingma and Welling 2014, section 2.4) writes the sample as
    a deterministic function of the parameters and parameter-free noise:

    $$z = \mu + \exp\left(\tfrac{1}{2}\log\sigma^2\right) \odot \varepsilon,
      \qquad \varepsilon \sim \mathcal{N}(0, I),$$

    so $\partial z / \partial \mu = 1$ and
    $\partial z / \partial \log\sigma^2 = \tfrac{1}{2}\,\sigma\,\varepsilon$.

    Args:
        mean: the mean $\mu$.
        log_var: the log-variance $\log\sigma^2$ (not the standard deviation), same shape.
        generator: source of $\varepsilon$; drawn on the inputs' device and dtype.

    Returns:
        The sample $z$, shaped like ``mean``.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if ``mean`` and ``log_var`` differ in shape or are scalars, or (while
            `set_validate_args` is on) hold NaN or infinity.

    Shape:
        - mean, log_var: $(*, D)$
        - output: $(*, D)$

    Example:
        >>> mean, log_var = torch.zeros(4, 2), torch.zeros(4, 2)
        >>> z = reparameterize(mean, log_var, generator=torch.Generator().manual_seed(0))
        >>> z.shape
        torch.Size([4, 2])
    """
    _check_mean_log_var(mean, log_var)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * log_var) * eps


def gaussian_kl(
    mean: torch.Tensor,
    log_var: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""KL divergence from $\mathcal{N}(\mu, \operatorname{diag}(\sigma^2))$ to $\mathcal{N}(0, I)$.

    In closed form (Kingma and Welling 2014, appendix B), summed over the latent dimension:

    $$\mathrm{KL} = -\tfrac{1}{2}\sum_{j=1}^{D}
      \left(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\right) \ge 0,$$

    with equality exactly at the prior ($\mu = 0$, $\log\sigma^2 = 0$).

    Args:
        mean: the posterior mean $\mu$.
        log_var: the posterior log-variance $\log\sigma^2$, same shape.
        reduction: over the leading (batch) dimensions: ``"none"`` keeps them,
            ``"sum"`` adds them up, ``"mean"`` averages them.

    Returns:
        The KL in nats: shape $(*)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if an input is not a floating-point tensor.
        ValueError: if the shapes differ or ``reduction`` is unknown, or (while
            `set_validate_args` is on) an input holds NaN or infinity.

    Shape:
        - mean, log_var: $(*, D)$
        - output: $(*)$ or $()$

    Example:
        >>> gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5), reduction="sum")
        tensor(0.)
    """
    _check_mean_log_var(mean, log_var)
    per_example = -0.5 * (1.0 + log_var - mean.pow(2) - log_var.exp()).sum(dim=-1)
    return reduce_batch(per_example, reduction)


def gaussian_log_likelihood(
    x: torch.Tensor,
    mean: torch.Tensor,
    *,
    log_var: torch.Tensor | float = 0.0,
    reduction: str = "none",
    validate: bool | None = None,
) -> torch.Tensor:
    r"""Log-density of $x$ under $\mathcal{N}(\mu, \operatorname{diag}(\sigma^2))$.

    Summed over every non-batch dimension:

    $$\log p(x) = -\tfrac{1}{2}\sum_i \left(\log 2\pi + \log\sigma_i^2
      + \frac{(x_i - \mu_i)^2}{\sigma_i^2}\right).$$

    With the default unit variance this is $-\tfrac{1}{2}\lVert x-\mu\rVert^2$ plus a
    constant, the likelihood behind a squared-error reconstruction loss.

    Args:
        x: the data.
        mean: the decoder's mean, same shape as ``x``.
        log_var: the log-variance, a float or a tensor broadcastable to ``x``.
        reduction: over the batch (first) dimension.

        validate: run the checks that read values (NaN, ranges) for this call: ``None``
            follows `set_validate_args`, ``False`` skips them (inputs checked already).
    Returns:
        Log-likelihood in nats: shape $(B,)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if ``x``, ``mean`` or a tensor ``log_var`` is not floating-point.
        ValueError: on mismatched shapes, an unknown ``reduction``, or (while
            `set_validate_args` is on) NaN or infinity in an input.

    Shape:
        - x, mean: $(B, *)$
        - output: $(B,)$ or $()$

    Example:
        >>> x = torch.zeros(2, 3)
        >>> gaussian_log_likelihood(x, x)  # -3/2 log(2 pi) per example
        tensor([-2.7568, -2.7568])
    """
    check_floating("x", x)
    check_floating("mean", mean)
    check_same_shape("x", x, "mean", mean)
    if x.ndim == 0:
        raise ValueError("x must have a batch dimension (B, *), got a scalar")
    if isinstance(log_var, torch.Tensor):
        check_floating("log_var", log_var)
        try:
            broadcast = torch.broadcast_shapes(log_var.shape, x.shape)
        except RuntimeError:
            broadcast = None
        if broadcast != x.shape:
            raise ValueError(
                f"log_var must be a float or a tensor broadcastable to x {tuple(x.shape)}, "
                f"got shape {tuple(log_var.shape)}"
            )
    elif isinstance(log_var, bool) or not isinstance(log_var, (int, float)):
        raise TypeError(f"log_var must be a float or a tensor, got {type(log_var).__name__}")
    check_finite("x", x, validate)
    check_finite("mean", mean, validate)
    log_var_t = torch.as_tensor(log_var, dtype=x.dtype, device=x.device)
    check_finite("log_var", log_var_t, validate)
    elementwise = _LOG_2PI + log_var_t + (x - mean).pow(2) * torch.exp(-log_var_t)
    per_example = -0.5 * sum_non_batch(elementwise.expand_as(x))
    return reduce_batch(per_example, reduction)
