"""The continuous Bernoulli likelihood (Loaiza-Ganem and Cunningham 2019), from logits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genlatent._validation import (
    check_finite,
    check_floating,
    check_same_shape,
    check_unit_interval,
)
from genlatent.functional._reduce import reduce_batch, sum_non_batch

__all__ = [
    "TAYLOR_BAND",
    "continuous_bernoulli_log_likelihood",
    "continuous_bernoulli_log_norm",
    "continuous_bernoulli_logits",
    "continuous_bernoulli_mean",
]

TAYLOR_BAND = 0.5
r"""Logits with $|\ell| <$ ``TAYLOR_BAND`` use Taylor series (see `continuous_bernoulli_log_norm`).

The band $|\ell| < 0.5$ is $\lambda = \sigma(\ell) \in (0.3775, 0.6225)$.
"""

_LOG_2 = math.log(2.0)
# log(u / tanh u) = sum_n a_n u^(2n), n = 1..8 (then 11499383114/350813659321125 u^18, ...)
_LOG_NORM_SERIES = (
    1 / 3,
    -7 / 90,
    62 / 2835,
    -127 / 18900,
    146 / 66825,
    -1414477 / 1915538625,
    32764 / 127702575,
    -16931177 / 186080895000,
)
# coth u - 1/u (the Langevin function) = sum_n b_n u^(2n - 1), n = 1..8
# (then 87734/38979295480125 u^17, ...)
_LANGEVIN_SERIES = (
    1 / 3,
    -1 / 45,
    2 / 945,
    -1 / 4725,
    2 / 93555,
    -1382 / 638512875,
    4 / 18243225,
    -3617 / 162820783125,
)


def _even_series(
    u2: torch.Tensor, coefficients: tuple[float, ...], *, odd: bool = False
) -> torch.Tensor:
    """``sum_n c_n u2^n`` for n = 1, 2, ... by Horner's rule; from n = 0 when ``odd``."""
    total = torch.full_like(u2, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        total = total * u2 + c
    return total if odd else total * u2


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    r"""$\log C(\lambda)$, the log normalising constant of the continuous Bernoulli.

    With $\lambda = \sigma(\ell)$ and $u = \ell / 2$ (so $1 - 2\lambda = -\tanh u$ and
    $2\operatorname{artanh}(1 - 2\lambda) = -\ell$), the constant of Loaiza-Ganem and
    Cunningham (2019, eq. 7) is

    $$C(\lambda) = \frac{2\operatorname{artanh}(1 - 2\lambda)}{1 - 2\lambda}
      = \frac{\ell}{\tanh(\ell/2)}, \qquad
      \log C = \log 2 + \log\frac{|u|}{\tanh|u|},$$

    an even function of $\ell$ with $C = 2$ at $\lambda = 1/2$, where the closed form is
    $0/0$. For $|\ell| <$ `TAYLOR_BAND` $= 0.5$ (i.e. $|u| < 1/4$) it is computed from

    $$\log\frac{u}{\tanh u} = \frac{u^2}{3} - \frac{7u^4}{90} + \frac{62u^6}{2835}
      - \frac{127u^8}{18900} + \frac{146u^{10}}{66825}
      - \frac{1414477u^{12}}{1915538625} + \frac{32764u^{14}}{127702575}
      - \frac{16931177u^{16}}{186080895000} + \dots$$

    truncated after $u^{16}$: the series alternates with decreasing terms, so the error is
    below the first omitted term, $3.3 \cdot 10^{-5}\,u^{18} < 5 \cdot 10^{-16}$ on the
    band, under the rounding of float64.
    Outside the band the closed form loses nothing ($\log|u|$ and $\log\tanh|u|$ differ
    by more than $0.02$, and $\tanh|u|$ rounds to 1 only where $\log\tanh|u|$ is below
    the rounding of $\log|u|$). torch's ``ContinuousBernoulli`` uses a two-term expansion
    on $\lambda \in (0.499, 0.501)$ only, and its closed form just outside loses digits to
    cancellation in float32.

    Args:
        logits: $\ell$, any shape, floating point.

    Returns:
        $\log C(\sigma(\ell))$, shaped like ``logits``; finite with a finite gradient for
        every finite logit.

    Example:
        >>> continuous_bernoulli_log_norm(torch.tensor([0.0, 2.0]))  # log 2, log(2 / tanh 1)
        tensor([0.6931, 0.9655])
    """
    u = 0.5 * logits.abs()
    in_band = u < 0.5 * TAYLOR_BAND
    # each branch is evaluated only where it is used (elsewhere at a harmless point: 1 for
    # the closed form, 0 for the series), so that neither of torch.where's branches
    # produces an infinite or NaN gradient
    safe = torch.where(in_band, torch.ones_like(u), u)
    closed = torch.log(safe) - torch.log(torch.tanh(safe))
    small = torch.where(in_band, u, torch.zeros_like(u))
    series = _even_series(small * small, _LOG_NORM_SERIES)
    return _LOG_2 + torch.where(in_band, series, closed)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    r"""The mean of the continuous Bernoulli with logits $\ell$ (not $\sigma(\ell)$).

    Loaiza-Ganem and Cunningham (2019, eq. 8) give
    $\mathbb{E}[x] = \frac{\lambda}{2\lambda - 1} + \frac{1}{2\operatorname{artanh}(1 - 2\lambda)}$;
    with $u = \ell / 2$ this is

    $$\mathbb{E}[x] = \tfrac{1}{2}\bigl(1 + \coth u - 1/u\bigr),$$

    which is $1/2$ at $\ell = 0$ and lies strictly between $\sigma(\ell)$ and $1/2$.
    For $|\ell| <$ `TAYLOR_BAND` the Langevin function $\coth u - 1/u$ is its series
    $u/3 - u^3/45 + 2u^5/945 - u^7/4725 + 2u^9/93555 - 1382u^{11}/638512875
    + 4u^{13}/18243225 - 3617u^{15}/162820783125$, whose truncation error is below
    $2.3 \cdot 10^{-9}\,u^{17} < 10^{-19}$ there.

    Args:
        logits: $\ell$, any shape, floating point.

    Returns:
        The mean, in $(0, 1)$, shaped like ``logits``.

    Example:
        >>> continuous_bernoulli_mean(torch.tensor([0.0, 2.0]))
        tensor([0.5000, 0.6565])
    """
    u = 0.5 * logits
    in_band = u.abs() < 0.5 * TAYLOR_BAND
    safe = torch.where(in_band, torch.ones_like(u), u)
    closed = 1.0 / torch.tanh(safe) - 1.0 / safe
    small = torch.where(in_band, u, torch.zeros_like(u))
    series = _even_series(small * small, _LANGEVIN_SERIES, odd=True) * small
    return 0.5 * (1.0 + torch.where(in_band, series, closed))


_BISECTION_STEPS = 64
"""Halvings of `continuous_bernoulli_logits`' bracket: past the resolution of float64."""


def continuous_bernoulli_logits(mean: torch.Tensor) -> torch.Tensor:
    r"""The logits $\ell$ whose continuous Bernoulli has mean ``mean``: the inverse of
    `continuous_bernoulli_mean`.

    The mean $m(\ell) = \tfrac{1}{2}(1 + \coth(\ell/2) - 2/\ell)$ increases strictly from 0
    to 1, so each $m \in (0, 1)$ has one $\ell$; it is not $\operatorname{logit}(m)$ (the
    mean lies between $\sigma(\ell)$ and $1/2$). As $\ell \to -\infty$,
    $m \approx -1/\ell$, so the root lies in $[-2/\min(m, 1 - m), 2/\min(m, 1 - m)]$;
    it is found by bisection of that bracket in ``mean``'s dtype, which converges for
    every $m$ where Newton's method, with $m'(\ell) \approx 1/\ell^2$ far out, would not.

    The continuous Bernoulli is an exponential family with sufficient statistic $x$, so
    these logits also maximise the likelihood of data whose mean is $m$: the logits of a
    decoder's output bias that fits the data's mean pixel (see `VAE.init_output_bias`).

    Args:
        mean: $m$, any shape, floating point, strictly inside $(0, 1)$.

    Returns:
        $\ell$ with ``continuous_bernoulli_mean(ℓ) == mean`` up to rounding, shaped like
        ``mean``.

    Raises:
        TypeError: if ``mean`` is not floating point.
        ValueError: if a value of ``mean`` is not strictly between 0 and 1.

    Example:
        >>> logits = continuous_bernoulli_logits(torch.tensor([0.2, 0.7]))
        >>> logits, continuous_bernoulli_mean(logits)
        (tensor([-4.8010,  2.6721]), tensor([0.2000, 0.7000]))
    """
    check_floating("mean", mean)
    if not bool(((mean > 0) & (mean < 1)).all()):
        raise ValueError(
            f"mean must lie strictly between 0 and 1, got values in "
            f"[{float(mean.min())}, {float(mean.max())}]"
        )
    bound = 2.0 / torch.minimum(mean, 1.0 - mean)
    low, high = -bound, bound.clone()
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        below = continuous_bernoulli_mean(middle) < mean
        low = torch.where(below, middle, low)
        high = torch.where(below, high, middle)
    return 0.5 * (low + high)


def continuous_bernoulli_log_likelihood(
    x: torch.Tensor,
    logits: torch.Tensor,
    *,
    reduction: str = "none",
    validate: bool | None = None,
) -> torch.Tensor:
    r"""Log-density of $x \in [0, 1]$ under independent continuous Bernoullis.

    The continuous Bernoulli (Loaiza-Ganem and Cunningham 2019) is the Bernoulli
    likelihood of grey levels made a proper density on $[0, 1]$:

    $$\log p(x \mid \lambda) = \sum_i \log C(\lambda_i) + x_i \log\lambda_i
      + (1 - x_i)\log(1 - \lambda_i), \qquad \lambda_i = \sigma(\ell_i),$$

    that is `bernoulli_log_likelihood` plus $\sum_i \log C(\lambda_i)$ (see
    `continuous_bernoulli_log_norm` for its stable computation near $\lambda = 1/2$).
    Summed over every non-batch dimension. Being a density, it can be positive.

    Args:
        x: data in $[0, 1]$.
        logits: the decoder's logits $\ell$, same shape.
        reduction: over the batch (first) dimension.

        validate: run the checks that read values (NaN, ranges) for this call: ``None``
            follows `set_validate_args`, ``False`` skips them (inputs checked already).
    Returns:
        Log-density in nats: shape $(B,)$ for ``"none"``, else a scalar.

    Raises:
        TypeError: if ``x`` or ``logits`` is not a floating-point tensor.
        ValueError: on mismatched shapes, a scalar ``x``, an unknown ``reduction``, or
            (while `set_validate_args` is on) ``x`` outside $[0, 1]$ or non-finite logits.

    Shape:
        - x, logits: $(B, *)$
        - output: $(B,)$ or $()$

    Example:
        >>> x = torch.tensor([[0.2, 0.9]])
        >>> continuous_bernoulli_log_likelihood(x, torch.zeros(1, 2))  # uniform density
        tensor([0.])
    """
    check_floating("x", x)
    check_floating("logits", logits)
    check_same_shape("x", x, "logits", logits)
    if x.ndim == 0:
        raise ValueError("x must have a batch dimension (B, *), got a scalar")
    check_unit_interval("x", x, validate)
    check_finite("logits", logits, validate)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    per_example = sum_non_batch(continuous_bernoulli_log_norm(logits) - bce)
    return reduce_batch(per_example, reduction)
