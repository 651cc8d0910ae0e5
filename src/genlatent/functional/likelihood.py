"""The decoder likelihoods by name: one dispatch used by the losses, metrics and models."""

from __future__ import annotations

import torch

from genlatent.functional.bernoulli import bernoulli_log_likelihood
from genlatent.functional.gaussian import gaussian_log_likelihood

__all__ = ["LIKELIHOODS", "check_likelihood", "likelihood_mean", "log_likelihood"]

LIKELIHOODS = ("bernoulli", "gaussian")
"""The names a model or loss accepts as ``likelihood``."""


def check_likelihood(likelihood: object) -> str:
    """Return ``likelihood`` if it names one of `LIKELIHOODS`, else raise ``ValueError``."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return str(likelihood)


def log_likelihood(
    x: torch.Tensor, decoder_output: torch.Tensor, likelihood: str = "bernoulli"
) -> torch.Tensor:
    r"""$\log p(x \mid z)$ per example, summed over its values, for the named likelihood.

    ``"bernoulli"``: `bernoulli_log_likelihood` with ``decoder_output`` as logits;
    ``"gaussian"``: `gaussian_log_likelihood` with ``decoder_output`` as the mean of a
    unit-variance Gaussian.

    Shape:
        - x, decoder_output: $(B, *)$
        - output: $(B,)$

    Example:
        >>> import math, torch
        >>> x = torch.ones(2, 3)
        >>> log_likelihood(x, torch.zeros(2, 3), "bernoulli") / math.log(0.5)
        tensor([3., 3.])
    """
    if check_likelihood(likelihood) == "bernoulli":
        return bernoulli_log_likelihood(x, decoder_output)
    return gaussian_log_likelihood(x, decoder_output)


def likelihood_mean(decoder_output: torch.Tensor, likelihood: str = "bernoulli") -> torch.Tensor:
    """The mean of $p(x \\mid z)$: ``sigmoid(logits)`` (Bernoulli) or the Gaussian mean itself.

    Example:
        >>> import torch
        >>> likelihood_mean(torch.zeros(2), "bernoulli")
        tensor([0.5000, 0.5000])
    """
    if check_likelihood(likelihood) == "bernoulli":
        return torch.sigmoid(decoder_output)
    return decoder_output
