"""The decoder likelihoods by name: one dispatch used by the losses, metrics and models."""

from __future__ import annotations

from typing import cast

import torch

from genlatent._validation import (
    check_finite,
    check_floating,
    check_positive_int,
    check_unit_interval,
)
from genlatent.functional.bernoulli import bernoulli_log_likelihood
from genlatent.functional.continuous_bernoulli import (
    continuous_bernoulli_log_likelihood,
    continuous_bernoulli_logits,
    continuous_bernoulli_mean,
)
from genlatent.functional.gaussian import gaussian_log_likelihood
from genlatent.functional.logistic import (
    discretized_logistic_mixture_log_likelihood,
    discretized_logistic_mixture_mean,
)

__all__ = [
    "LIKELIHOODS",
    "MEAN_CLAMP",
    "MEAN_PARAMETERIZED",
    "check_decoder_output",
    "check_likelihood",
    "decoder_channels",
    "fit_decoder_output",
    "likelihood_mean",
    "log_likelihood",
    "parameters_for_mean",
]

LIKELIHOODS = (
    "bernoulli",
    "continuous_bernoulli",
    "gaussian",
    "gaussian_learned_var",
    "discretized_logistic",
)
"""The names a model or loss accepts as ``likelihood`` (the layouts are in `log_likelihood`)."""

_NEEDS_MIXTURES = "discretized_logistic"

MEAN_PARAMETERIZED = ("bernoulli", "continuous_bernoulli", "gaussian")
"""The likelihoods whose one parameter per value `parameters_for_mean` can set from a mean."""

MEAN_CLAMP = 1e-3
r"""`parameters_for_mean` clamps a Bernoulli or continuous Bernoulli mean to
$[10^{-3}, 1 - 10^{-3}]$: a pixel that is 0 in every image (MNIST's border) gets logits
$-6.9$ (Bernoulli) or $-1000$ (continuous Bernoulli), not $-\infty$."""


def parameters_for_mean(mean: torch.Tensor, likelihood: str) -> torch.Tensor:
    r"""The decoder output whose likelihood has mean ``mean``, value by value.

    ``"bernoulli"``: the logits $\operatorname{logit}(m)$; ``"continuous_bernoulli"``: the
    logits whose continuous Bernoulli mean is $m$ (`continuous_bernoulli_logits`, not
    $\operatorname{logit}(m)$); ``"gaussian"``: $m$ itself. The first two clamp $m$ to
    $[$`MEAN_CLAMP`$, 1 - $`MEAN_CLAMP`$]$. Each of the three is an exponential family
    whose sufficient statistic is $x$, so for a training set whose mean is $m$ these
    parameters maximise its likelihood among constant decoders: the start Burda et al.
    (2016) give their decoder's output bias.

    Args:
        mean: the data's mean, any shape (one example's), in $[0, 1]$ for the first two.
        likelihood: one of `MEAN_PARAMETERIZED`.

    Returns:
        The parameters, shaped like ``mean``.

    Raises:
        TypeError: if ``mean`` is not floating point.
        ValueError: on a likelihood not in `MEAN_PARAMETERIZED`, or (for the first two) a
            mean outside $[0, 1]$.

    Example:
        >>> parameters_for_mean(torch.tensor([0.5, 0.25]), "bernoulli")
        tensor([ 0.0000, -1.0986])
    """
    check_floating("mean", mean)
    if likelihood not in MEAN_PARAMETERIZED:
        raise ValueError(
            f"likelihood must be one of {MEAN_PARAMETERIZED} to set its parameters from a "
            f"mean, got {likelihood!r}"
        )
    if likelihood == "gaussian":
        return mean
    check_unit_interval("mean", mean, True)
    mean = mean.clamp(MEAN_CLAMP, 1.0 - MEAN_CLAMP)
    if likelihood == "bernoulli":
        return torch.logit(mean)
    return continuous_bernoulli_logits(mean)


def check_likelihood(likelihood: object) -> str:
    """Return ``likelihood`` if it names a known likelihood, else raise ``ValueError``."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return str(likelihood)


def decoder_channels(likelihood: str, channels: int, *, num_mixtures: int | None = None) -> int:
    """How many output channels (or flat features) a decoder needs for ``channels`` data channels.

    Args:
        likelihood: a name `log_likelihood` takes.
        channels: $C$, the data's channels (or $D$, its features, for flat data).
        num_mixtures: $M$, required for ``"discretized_logistic"`` and only there.

    Raises:
        ValueError: on an unknown ``likelihood`` or a ``num_mixtures`` given where it does
            not apply or missing where it does.

    Example:
        >>> decoder_channels("gaussian_learned_var", 3), decoder_channels("bernoulli", 784)
        (6, 784)
        >>> decoder_channels("discretized_logistic", 3, num_mixtures=5)
        45
    """
    return _params_per_value(check_likelihood(likelihood), num_mixtures) * channels


def _params_per_value(likelihood: str, num_mixtures: int | None) -> int:
    if likelihood == _NEEDS_MIXTURES:
        if num_mixtures is None:
            raise ValueError("num_mixtures must be given for likelihood 'discretized_logistic'")
        return 3 * check_positive_int("num_mixtures", num_mixtures)
    if num_mixtures is not None:
        raise ValueError(
            f"num_mixtures applies only to likelihood 'discretized_logistic', "
            f"got num_mixtures={num_mixtures!r} with likelihood {likelihood!r}"
        )
    return 2 if likelihood == "gaussian_learned_var" else 1


def check_decoder_output(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    likelihood: str,
    *,
    num_mixtures: int | None = None,
) -> int | None:
    """Require ``decoder_output`` to fit ``x`` under ``likelihood`` (see `log_likelihood`).

    Returns:
        The number of mixtures $M$ for ``"discretized_logistic"`` (``num_mixtures``, or
        read from the channel count when it is ``None``), else ``None``.

    Raises:
        TypeError: if ``x`` or ``decoder_output`` is not a floating-point tensor.
        ValueError: if the shapes do not fit, naming the expected shape.
    """
    check_floating("x", x)
    check_floating("decoder_output", decoder_output)
    likelihood = check_likelihood(likelihood)
    if likelihood == _NEEDS_MIXTURES and num_mixtures is None:
        num_mixtures = 1  # if it cannot be read, only to name the expected shape below
        if x.ndim >= 2 and decoder_output.ndim >= 2 and x.shape[1] > 0:
            count, rest = divmod(decoder_output.shape[1], 3 * x.shape[1])
            num_mixtures = count if count >= 1 and not rest else 1
    per_value = _params_per_value(likelihood, num_mixtures)
    if per_value == 1:
        if decoder_output.shape != x.shape:
            raise ValueError(
                f"decoder_output must have the shape of x {tuple(x.shape)}, "
                f"got {tuple(decoder_output.shape)}"
            )
        return None
    if x.ndim < 2:
        raise ValueError(
            f"x must have shape (B, C, *) for likelihood {likelihood!r}, got {tuple(x.shape)}"
        )
    expected = (x.shape[0], per_value * x.shape[1], *x.shape[2:])
    if decoder_output.shape != expected:
        factor = "2" if per_value == 2 else "3 * num_mixtures"
        raise ValueError(
            f"decoder_output must have shape (B, {factor} * C, *) = {expected} for likelihood "
            f"{likelihood!r} and x of shape {tuple(x.shape)}, got {tuple(decoder_output.shape)}"
        )
    return num_mixtures


def log_likelihood(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    likelihood: str = "bernoulli",
    *,
    num_mixtures: int | None = None,
    validate: bool | None = None,
) -> torch.Tensor:
    r"""$\log p(x \mid z)$ per example, summed over its values, for the named likelihood.

    ``"bernoulli"`` and ``"continuous_bernoulli"`` read ``decoder_output`` as logits,
    ``"gaussian"`` as the mean of a unit-variance Gaussian, ``"gaussian_learned_var"`` as
    the mean and the log-variance stacked along dim 1 (a learned scale per value, see
    `gaussian_log_likelihood`), ``"discretized_logistic"`` as the parameters of
    `discretized_logistic_mixture_log_likelihood` (256 bins).

    What the decoder outputs for data $x$ of shape $(B, C, *)$ (or flat $(B, D)$, with $D$
    in the place of $C$):

    | name | decoder output | parameters |
    | --- | --- | --- |
    | ``"bernoulli"`` | $(B, C, *)$ | logits (`bernoulli_log_likelihood`) |
    | ``"continuous_bernoulli"`` | $(B, C, *)$ | logits (`continuous_bernoulli_log_likelihood`) |
    | ``"gaussian"`` | $(B, C, *)$ | the mean; unit variance (`gaussian_log_likelihood`) |
    | ``"gaussian_learned_var"`` | $(B, 2C, *)$ | mean, then log-variance, split along dim 1 |
    | ``"discretized_logistic"`` | $(B, 3MC, *)$ | $M$ logistics (`split_logistic_mixture`) |

    A learned variance per value is unbounded above on data that a decoder can predict
    exactly (MNIST's constant black border): its log-variance can run to $-\infty$. Use it
    on dequantized or noisy data, or with a discrete likelihood instead.

    **Several latents per example**: ``decoder_output`` may carry one leading sample
    dimension, $(K, B, P C, *)$, the decoder's output for $K$ latents of each example;
    ``x`` is then broadcast over it, never copied, and the result is $(K, B)$. This is
    what the IWAE bound evaluates. The Bernoulli case is computed as
    $\sum_i x_i \ell_i - \operatorname{softplus}(\ell_i)$: one batched matrix-vector
    product and one softplus pass, the log-likelihood of `bernoulli_log_likelihood` in
    two passes over the $K$-fold output instead of a copy of ``x`` and the several of the
    binary cross-entropy (it rounds differently: the absolute error per value is an ulp of
    $|\ell_i|$, where the cross-entropy has it for $x_i = 0$ and this for $x_i = 1$); the
    others call their function on the flattened samples. The value checks of
    `set_validate_args` then read ``x`` only, not the $K$-fold ``decoder_output``.

    Args:
        x: the data, $(B, C, *)$ or $(B, D)$.
        decoder_output: the likelihood's parameters, shaped as the table above lists,
            optionally with a leading sample dimension.
        likelihood: a name `log_likelihood` takes.
        num_mixtures: $M$ for ``"discretized_logistic"``; read from the channels when ``None``.
        validate: run the checks that read values (NaN, ranges) for this call: ``None``
            follows `set_validate_args`, ``False`` skips them (inputs checked already).

    Raises:
        ValueError: on an unknown ``likelihood`` or a ``decoder_output`` that does not fit
            ``x`` (see `check_decoder_output`), and as the named function raises.

    Shape:
        - x: $(B, *)$
        - decoder_output: $(B, P C, *)$ or $(K, B, P C, *)$, $P$ parameters per value
        - output: $(B,)$ or $(K, B)$

    Example:
        >>> import math, torch
        >>> x = torch.ones(2, 3)
        >>> log_likelihood(x, torch.zeros(2, 3), "bernoulli") / math.log(0.5)
        tensor([3., 3.])
        >>> log_likelihood(x, torch.ones(2, 6), "gaussian_learned_var")  # mean 1, var e
        tensor([-4.2568, -4.2568])
        >>> log_likelihood(x, torch.zeros(5, 2, 3), "bernoulli").shape  # 5 latents each
        torch.Size([5, 2])
    """
    check_floating("x", x)
    check_floating("decoder_output", decoder_output)
    if x.ndim >= 1 and decoder_output.ndim == x.ndim + 1 and decoder_output.shape[0] > 0:
        return _log_likelihood_samples(x, decoder_output, likelihood, num_mixtures, validate)
    num_mixtures = check_decoder_output(x, decoder_output, likelihood, num_mixtures=num_mixtures)
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, decoder_output, validate=validate)
    if likelihood == "continuous_bernoulli":
        return continuous_bernoulli_log_likelihood(x, decoder_output, validate=validate)
    if likelihood == "gaussian":
        return gaussian_log_likelihood(x, decoder_output, validate=validate)
    if likelihood == "gaussian_learned_var":
        mean, log_var = decoder_output.chunk(2, dim=1)
        return gaussian_log_likelihood(x, mean, log_var=log_var, validate=validate)
    # check_decoder_output returned M for this likelihood
    return discretized_logistic_mixture_log_likelihood(
        x, decoder_output, num_mixtures=cast(int, num_mixtures), validate=validate
    )


def _log_likelihood_samples(
    x: torch.Tensor,
    decoder_output: torch.Tensor,
    likelihood: str,
    num_mixtures: int | None,
    validate: bool | None,
) -> torch.Tensor:
    """`log_likelihood` of ``x`` $(B, *)$ under each of $K$ outputs $(K, B, P C, *)$: $(K, B)$."""
    num_mixtures = check_decoder_output(x, decoder_output[0], likelihood, num_mixtures=num_mixtures)
    if likelihood == "bernoulli":
        check_unit_interval("x", x, validate)
        batch, values = x.shape[0], x.shape[1:].numel()
        logits = decoder_output.reshape(decoder_output.shape[0], batch, values)  # (K, B, V)
        # sum_v x_v l_v for every (k, b): one batched matrix-vector product over b
        agreement = torch.bmm(logits.transpose(0, 1), x.reshape(batch, values, 1))
        agreement = agreement.squeeze(-1).T
        # softplus(l) = logaddexp(l, 0), which torch evaluates in fewer passes than softplus
        zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
        return agreement - torch.logaddexp(logits, zero).sum(dim=-1)
    if likelihood in ("gaussian", "gaussian_learned_var"):
        check_finite("x", x, validate)
    else:
        check_unit_interval("x", x, validate)
    count, batch = decoder_output.shape[:2]
    flat = log_likelihood(  # x is checked above; the K-fold output is not read
        x.expand(count, *x.shape).reshape(count * batch, *x.shape[1:]),
        decoder_output.reshape(count * batch, *decoder_output.shape[2:]),
        likelihood,
        num_mixtures=num_mixtures,
        validate=False,
    )
    return flat.reshape(count, batch)


def fit_decoder_output(output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A decoder's output in the layout the likelihoods expect for ``x`` (see `log_likelihood`).

    When each row of ``output`` $(N, *)$ holds $P$ times as many values as an example of
    ``x`` $(B, C, *)$, it is reshaped to $(N, P C, *)$ (to $(N, P D)$ for flat $x$), so an
    MLP decoder's flat $(N, 784)$ serves image data $(B, 1, 28, 28)$ and vice versa; any
    other output comes back unchanged, for `check_decoder_output` to name.

    Example:
        >>> fit_decoder_output(torch.zeros(4, 2 * 784), torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 2, 28, 28])
    """
    if output.ndim == 0 or x.ndim == 0:
        return output
    per_example = x.shape[1:].numel()
    per_row = output.shape[1:].numel()
    if per_example == 0 or per_row % per_example:
        return output
    factor = per_row // per_example
    if x.ndim == 1:
        shape: tuple[int, ...] = (output.shape[0], factor) if factor > 1 else (output.shape[0],)
    else:
        shape = (output.shape[0], factor * x.shape[1], *x.shape[2:])
    return output if output.shape == shape else output.reshape(shape)


def likelihood_mean(
    decoder_output: torch.Tensor,
    likelihood: str = "bernoulli",
    *,
    num_mixtures: int | None = None,
) -> torch.Tensor:
    r"""The mean of $p(x \mid z)$ that ``decoder_output`` parameterizes, shaped like the data.

    ``sigmoid(logits)`` (Bernoulli); `continuous_bernoulli_mean` of the logits, which is
    not the sigmoid; the Gaussian mean (the first half of the channels for
    ``"gaussian_learned_var"``); `discretized_logistic_mixture_mean` (``num_mixtures``
    required).

    Raises:
        ValueError: on an unknown ``likelihood``, a missing or misplaced ``num_mixtures``,
            or a channel count that does not divide into the likelihood's parameters.

    Example:
        >>> import torch
        >>> likelihood_mean(torch.zeros(2), "bernoulli")
        tensor([0.5000, 0.5000])
        >>> likelihood_mean(torch.tensor([[2.0]]), "continuous_bernoulli")
        tensor([[0.6565]])
    """
    likelihood = check_likelihood(likelihood)
    per_value = _params_per_value(likelihood, num_mixtures)
    if per_value > 1 and (decoder_output.ndim < 2 or decoder_output.shape[1] % per_value):
        raise ValueError(
            f"decoder_output must have a multiple of {per_value} channels in dim 1 for "
            f"likelihood {likelihood!r}, got shape {tuple(decoder_output.shape)}"
        )
    if likelihood == "bernoulli":
        return torch.sigmoid(decoder_output)
    if likelihood == "continuous_bernoulli":
        return continuous_bernoulli_mean(decoder_output)
    if likelihood == "gaussian":
        return decoder_output
    if likelihood == "gaussian_learned_var":
        return decoder_output.chunk(2, dim=1)[0]
    return discretized_logistic_mixture_mean(
        decoder_output,
        num_channels=decoder_output.shape[1] // per_value,
        num_mixtures=cast(int, num_mixtures),  # _params_per_value required it
    )
