"""Tests for the one likelihood dispatch: every name against its reference."""

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Normal

from genlatent.functional import (
    check_decoder_output,
    decoder_channels,
    discretized_logistic_mixture_log_likelihood,
    discretized_logistic_mixture_mean,
    likelihood_mean,
    log_likelihood,
)
from genlatent.functional.likelihood import LIKELIHOODS

_G = torch.Generator().manual_seed(0)
X = torch.randint(0, 256, (3, 2, 4, 4), generator=_G).double() / 255  # 8-bit images


def _output(likelihood, num_mixtures=2):
    channels = decoder_channels(
        likelihood, 2, num_mixtures=num_mixtures if likelihood == "discretized_logistic" else None
    )
    return torch.randn(3, channels, 4, 4, generator=_G, dtype=torch.float64)


def _reference(likelihood, x, out):
    """log p(x | out) from torch.distributions (or the named function for the mixture)."""
    if likelihood == "bernoulli":
        # grey levels: the Bernoulli log-mass formula, which Bernoulli.log_prob evaluates
        return Bernoulli(logits=out, validate_args=False).log_prob(x).sum(dim=(1, 2, 3))
    if likelihood == "continuous_bernoulli":
        return ContinuousBernoulli(logits=out).log_prob(x).sum(dim=(1, 2, 3))
    if likelihood == "gaussian":
        return Normal(out, 1.0).log_prob(x).sum(dim=(1, 2, 3))
    if likelihood == "gaussian_learned_var":
        mean, log_var = out[:, :2], out[:, 2:]
        return Normal(mean, (0.5 * log_var).exp()).log_prob(x).sum(dim=(1, 2, 3))
    return discretized_logistic_mixture_log_likelihood(x, out, num_mixtures=2)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_every_name_matches_its_reference(likelihood):
    out = _output(likelihood)
    torch.testing.assert_close(log_likelihood(X, out, likelihood), _reference(likelihood, X, out))


def test_mixtures_are_read_from_the_channels_or_given():
    out = _output("discretized_logistic", num_mixtures=3)
    inferred = log_likelihood(X, out, "discretized_logistic")
    given = log_likelihood(X, out, "discretized_logistic", num_mixtures=3)
    torch.testing.assert_close(inferred, given)
    with pytest.raises(ValueError, match=r"decoder_output must have shape \(B, 3 \* num_mixtures"):
        log_likelihood(X, out, "discretized_logistic", num_mixtures=2)


def test_flat_data_works_for_every_name():
    x = X.flatten(1)
    for likelihood in LIKELIHOODS:
        m = 2 if likelihood == "discretized_logistic" else None
        out = torch.randn(3, decoder_channels(likelihood, 32, num_mixtures=m), dtype=torch.float64)
        assert log_likelihood(x, out, likelihood).shape == (3,)


def test_means():
    logits = _output("bernoulli")
    torch.testing.assert_close(likelihood_mean(logits, "bernoulli"), torch.sigmoid(logits))
    torch.testing.assert_close(
        likelihood_mean(logits, "continuous_bernoulli"), ContinuousBernoulli(logits=logits).mean
    )
    torch.testing.assert_close(likelihood_mean(logits, "gaussian"), logits)
    two = _output("gaussian_learned_var")
    torch.testing.assert_close(likelihood_mean(two, "gaussian_learned_var"), two[:, :2])
    mix = _output("discretized_logistic")
    torch.testing.assert_close(
        likelihood_mean(mix, "discretized_logistic", num_mixtures=2),
        discretized_logistic_mixture_mean(mix, num_channels=2, num_mixtures=2),
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"likelihood must be one of .* got 'poisson'"):
        log_likelihood(X, X, "poisson")
    with pytest.raises(ValueError, match=r"decoder_output must have the shape of x \(3, 2, 4, 4\)"):
        log_likelihood(X, X[:, :1], "bernoulli")
    with pytest.raises(
        ValueError, match=r"decoder_output must have shape \(B, 2 \* C, \*\) = \(3, 4, 4, 4\)"
    ):
        log_likelihood(X, X, "gaussian_learned_var")
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, \*\) for likelihood"):
        log_likelihood(X[:, 0, 0, 0], X[:, 0, 0, :2], "gaussian_learned_var")
    with pytest.raises(ValueError, match="num_mixtures must be given for likelihood"):
        likelihood_mean(X, "discretized_logistic")
    with pytest.raises(ValueError, match=r"num_mixtures applies only to likelihood .* 'bernoulli'"):
        decoder_channels("bernoulli", 3, num_mixtures=2)
    with pytest.raises(ValueError, match=r"must have a multiple of 6 channels in dim 1"):
        likelihood_mean(X, "discretized_logistic", num_mixtures=2)
    with pytest.raises(TypeError, match="decoder_output must have a floating-point dtype"):
        check_decoder_output(X, X.long(), "bernoulli")
