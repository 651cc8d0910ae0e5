"""The discretized mixture of logistics for 8-bit data (Salimans et al. 2017, PixelCNN++)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from genlatent._validation import (
    check_finite,
    check_floating,
    check_positive_int,
    check_unit_interval,
)
from genlatent.functional._reduce import reduce_batch, sum_non_batch

__all__ = [
    "MIN_LOG_SCALE",
    "discretized_logistic_mixture_log_likelihood",
    "discretized_logistic_mixture_mean",
    "split_logistic_mixture",
]

MIN_LOG_SCALE = -7.0
"""Log-scales are clamped below at this value, as in PixelCNN++.

A bin is $2/255 \\approx e^{-4.8}$ wide on the $[-1, 1]$ scale, so a logistic of scale
$e^{-7}$ puts more than $0.99$ of its mass in one bin already.
"""


def split_logistic_mixture(
    params: torch.Tensor, num_channels: int, num_mixtures: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Split $(B, 3 M C, *)$ parameters into logits, means and log-scales, each $(B, M, C, *)$.

    The layout along dimension 1 is ``(k m c)`` in einops terms: three blocks (mixture
    logits, means, log-scales) of $M \cdot C$ channels each, mixture-major within a block.
    For an MNIST image $(B, 1, 28, 28)$ with $M = 5$, ``params`` is $(B, 15, 28, 28)$ and
    each part $(B, 5, 1, 28, 28)$. Log-scales come back clamped at `MIN_LOG_SCALE`.

    Raises:
        ValueError: if ``params`` has no dimension 1 of size $3 M C$.
    """
    expected = 3 * num_mixtures * num_channels
    if params.ndim < 2 or params.shape[1] != expected:
        raise ValueError(
            f"params must have 3 * num_mixtures * C = {expected} channels in dim 1 "
            f"(num_mixtures={num_mixtures}, C={num_channels}), got shape {tuple(params.shape)}"
        )
    logits, means, log_scales = rearrange(
        params, "b (k m c) ... -> k b m c ...", k=3, m=num_mixtures
    )
    return logits, means, log_scales.clamp(min=MIN_LOG_SCALE)


def discretized_logistic_mixture_log_likelihood(
    x: torch.Tensor,
    params: torch.Tensor,
    *,
    num_mixtures: int,
    num_bins: int = 256,
    reduction: str = "none",
    validate: bool | None = None,
) -> torch.Tensor:
    r"""Log-probability of 8-bit data under a discretized mixture of logistics.

    The likelihood of PixelCNN++ (Salimans et al. 2017, section 2.1). Data $x \in [0, 1]$
    on the grid $k / (n - 1)$, $n$ = ``num_bins``, are rescaled to $y = 2x - 1 \in
    [-1, 1]$, where bin $k$ is $[y - h, y + h]$ with half-width $h = 1/(n-1)$, the first
    bin reaching down to $-\infty$ and the last up to $+\infty$ (the edge cases at 0 and
    255). Each value has its own mixture of $M$ logistics with weights
    $\pi = \operatorname{softmax}(\text{logits})$, means $\mu_m$ and scales $s_m$ (both on
    the $[-1, 1]$ scale):

    $$P(x) = \sum_m \pi_m \bigl[\sigma\bigl(\tfrac{y + h - \mu_m}{s_m}\bigr)
      - \sigma\bigl(\tfrac{y - h - \mu_m}{s_m}\bigr)\bigr].$$

    The difference of sigmoids is taken in log space without cancellation, from
    $\sigma(a) - \sigma(b) = \sigma(a)\,\sigma(-b)\,(1 - e^{-(a - b)})$ for $a > b$:
    $\log\sigma(a) + \log\sigma(-b) + \log(-\operatorname{expm1}(b - a))$, so no
    fallback to the density at the bin centre is needed. Summed over every non-batch
    value. The channels of a pixel are independent given $z$ (no autoregressive coupling
    of R, G and B as in PixelCNN++: a VAE decoder outputs them all at once).

    Args:
        x: data in $[0, 1]$; each value is read as its nearest bin
            $k = \operatorname{round}(x (n - 1))$.
        params: $(B, 3 M C, *)$: mixture logits, means and log-scales, laid out as
            `split_logistic_mixture` describes.
        num_mixtures: $M \ge 1$.
        num_bins: $n \ge 2$, the number of levels (256 for 8-bit data).
        reduction: over the batch (first) dimension.

        validate: run the checks that read values (NaN, ranges) for this call: ``None``
            follows `set_validate_args`, ``False`` skips them (inputs checked already).
    Returns:
        $\log P(x)$ in nats (a log-probability, $\le 0$): $(B,)$ for ``"none"``, else $()$.
        ``-value / (D ln 2)`` is bits per dimension (`genlatent.metrics.bits_per_dim`).

    Raises:
        TypeError: if ``x`` or ``params`` is not floating-point, or ``num_mixtures`` /
            ``num_bins`` is not an int.
        ValueError: if ``x`` has no channel dimension $(B, C, *)$, ``params`` has not
            $3 M C$ channels or another shape than ``x`` elsewhere, ``num_bins < 2``, or
            (while `set_validate_args` is on) ``x`` is outside $[0, 1]$ or ``params`` not finite.

    Shape:
        - x: $(B, C, *)$, e.g. $(B, 3, 32, 32)$, or flat $(B, D)$
        - params: $(B, 3 M C, *)$
        - output: $(B,)$ or $()$

    Example:
        >>> x = torch.tensor([[0.0, 1.0]])  # one example, two values at the edges
        >>> params = torch.zeros(1, 6)  # M = 1: logit 0, mean 0, log-scale 0
        >>> p = discretized_logistic_mixture_log_likelihood(x, params, num_mixtures=1).exp()
        >>> torch.allclose(p, torch.sigmoid(torch.tensor(-1 + 1 / 255)) ** 2)  # both tails
        True
    """
    check_floating("x", x)
    check_floating("params", params)
    num_mixtures = check_positive_int("num_mixtures", num_mixtures)
    num_bins = check_positive_int("num_bins", num_bins)
    if num_bins < 2:
        raise ValueError(f"num_bins must be >= 2, got {num_bins}")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (B, C, *), got {tuple(x.shape)}")
    expected = (x.shape[0], 3 * num_mixtures * x.shape[1], *x.shape[2:])
    if params.shape != expected:
        raise ValueError(
            f"params must have shape (B, 3 * num_mixtures * C, *) = {expected} for x of shape "
            f"{tuple(x.shape)} and num_mixtures={num_mixtures}, got {tuple(params.shape)}"
        )
    check_unit_interval("x", x, validate)
    check_finite("params", params, validate)

    logits, means, log_scales = split_logistic_mixture(params, x.shape[1], num_mixtures)
    last = num_bins - 1
    k = torch.round(x * last)
    y = (2.0 * k / last - 1.0).unsqueeze(1)  # (B, 1, C, *), bin centres on [-1, 1]
    inv_scale = torch.exp(-log_scales)
    upper = inv_scale * (y - means + 1.0 / last)  # a: standardized upper edge
    lower = inv_scale * (y - means - 1.0 / last)  # b: standardized lower edge
    is_first = (k == 0).unsqueeze(1)
    is_last = (k == last).unsqueeze(1)
    # log(sigma(a) - sigma(b)) = log sigma(a) + log sigma(-b) + log(1 - exp(b - a)); the
    # first bin has b = -inf (the last two terms vanish), the last a = +inf (the first two)
    width = 2.0 * inv_scale / last  # a - b > 0
    log_mass = (
        torch.where(is_last, 0.0, F.logsigmoid(upper))
        + torch.where(is_first, 0.0, F.logsigmoid(-lower))
        + torch.where(is_first | is_last, 0.0, torch.log(-torch.expm1(-width)))
    )
    log_prob = torch.logsumexp(F.log_softmax(logits, dim=1) + log_mass, dim=1)  # (B, C, *)
    return reduce_batch(sum_non_batch(log_prob), reduction)


def discretized_logistic_mixture_mean(
    params: torch.Tensor, *, num_channels: int, num_mixtures: int, num_bins: int = 256
) -> torch.Tensor:
    r"""The exact mean, in $[0, 1]$, of the discretized mixture that ``params`` describe.

    For values on the grid $k/(n-1)$, $\mathbb{E}[x] = \frac{1}{n-1}\sum_{k=1}^{n-1}
    P(x \ge k/(n-1))$, and $P(x \ge k/(n-1)) = \sum_m \pi_m
    \bigl(1 - \sigma\bigl(\tfrac{2k/(n-1) - 1 - h - \mu_m}{s_m}\bigr)\bigr)$: the mass
    the clipped edges pile on 0 and 1 is counted, which the mixture mean
    $\sum_m \pi_m \mu_m$ would miss. $n - 1$ passes over ``params``' size.

    Shape:
        - params: $(B, 3 M C, *)$
        - output: $(B, C, *)$

    Example:
        >>> discretized_logistic_mixture_mean(torch.zeros(1, 3), num_channels=1, num_mixtures=1)
        tensor([[0.5000]])
    """
    logits, means, log_scales = split_logistic_mixture(params, num_channels, num_mixtures)
    weights = torch.softmax(logits, dim=1)
    inv_scale = torch.exp(-log_scales)
    last = num_bins - 1
    total = torch.zeros_like(means)
    for k in range(1, num_bins):
        edge = 2.0 * k / last - 1.0 - 1.0 / last
        total = total + torch.sigmoid(inv_scale * (means - edge))  # 1 - sigma(a) = sigma(-a)
    return (weights * total).sum(dim=1) / last
