"""Tests for the importance-weight maths and the sample path of the likelihood dispatch."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal

from genlatent.functional import (
    decoder_channels,
    fit_decoder_output,
    gaussian_log_density_ratio,
    log_likelihood,
    standard_normal_draws,
)
from genlatent.functional.likelihood import LIKELIHOODS

SEEDS = st.integers(0, 2**31 - 1)


@pytest.mark.parametrize("shape", [(3, 2), (1, 1), (7, 50), (4, 3, 5)])
def test_draws_are_the_successive_randn_calls(shape):
    draws = standard_normal_draws(5, shape, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    for draw in draws:
        assert torch.equal(draw, torch.randn(shape, generator=g))


def test_draws_follow_dtype():
    draws = standard_normal_draws(2, (3,), dtype=torch.float64)
    assert draws.dtype == torch.float64
    with pytest.raises(ValueError, match=r"num_samples must be >= 1, got 0"):
        standard_normal_draws(0, (3,))


@settings(deadline=None, max_examples=30)
@given(seed=SEEDS, count=st.integers(1, 4), batch=st.integers(0, 3), dim=st.integers(1, 5))
def test_density_ratio_matches_torch_distributions(seed, count, batch, dim):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    log_var = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    noise = torch.randn(count, batch, dim, generator=g, dtype=torch.float64)
    z = mean + torch.exp(0.5 * log_var) * noise
    expected = Normal(0.0, 1.0).log_prob(z).sum(-1) - Normal(
        mean, torch.exp(0.5 * log_var)
    ).log_prob(z).sum(-1)
    torch.testing.assert_close(gaussian_log_density_ratio(z, mean, log_var), expected)
    torch.testing.assert_close(gaussian_log_density_ratio(z, mean, log_var, noise=noise), expected)


def test_density_ratio_with_noise_is_exact_for_a_narrow_posterior():
    # sigma = 1e-6 around mean 1 in float32: z - mean keeps almost no digits, the noise all
    mean = torch.ones(1, 1)
    log_var = torch.full((1, 1), 2 * math.log(1e-6))
    noise = torch.full((1, 1, 1), 0.7)
    z = mean + torch.exp(0.5 * log_var) * noise
    exact = 0.5 * (log_var.double() + noise.double() ** 2 - z.double() ** 2).sum(-1)
    with_noise = gaussian_log_density_ratio(z, mean, log_var, noise=noise)
    torch.testing.assert_close(with_noise.double(), exact, rtol=1e-6, atol=0)
    without = gaussian_log_density_ratio(z, mean, log_var)
    assert (without.double() - exact).abs().item() > 1e-3  # what the noise argument is for


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("image", [True, False])
def test_sample_path_equals_one_call_per_sample(likelihood, image):
    g = torch.Generator().manual_seed(0)
    shape = (3, 2, 4, 4) if image else (3, 32)
    x = torch.randint(0, 256, shape, generator=g).double() / 255
    m = 2 if likelihood == "discretized_logistic" else None
    channels = decoder_channels(likelihood, shape[1], num_mixtures=m)
    outputs = torch.randn(5, 3, channels, *shape[2:], generator=g, dtype=torch.float64)
    together = log_likelihood(x, outputs, likelihood)
    one_by_one = torch.stack([log_likelihood(x, o, likelihood) for o in outputs])
    assert together.shape == (5, 3)
    torch.testing.assert_close(together, one_by_one)


def test_sample_path_checks_x_but_not_the_outputs():
    x = torch.full((2, 3), 2.0)
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        log_likelihood(x, torch.zeros(4, 2, 3), "bernoulli")
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        log_likelihood(x, torch.zeros(4, 2, 3), "continuous_bernoulli")
    with pytest.raises(ValueError, match=r"x must be finite"):
        log_likelihood(torch.full((2, 3), float("nan")), torch.zeros(4, 2, 3), "gaussian")
    with pytest.raises(ValueError, match=r"decoder_output must have the shape of x \(2, 3\)"):
        log_likelihood(torch.zeros(2, 3), torch.zeros(4, 2, 4), "bernoulli")


def test_fit_decoder_output():
    x = torch.zeros(4, 1, 28, 28)
    assert fit_decoder_output(torch.zeros(4, 784), x).shape == (4, 1, 28, 28)
    assert fit_decoder_output(torch.zeros(4, 2, 784), x).shape == (4, 2, 28, 28)
    assert fit_decoder_output(torch.zeros(4, 1, 28, 28), x.flatten(1)).shape == (4, 784)
    assert fit_decoder_output(torch.zeros(4, 3 * 784), x.flatten(1)).shape == (4, 3 * 784)
    odd = torch.zeros(4, 100)
    assert fit_decoder_output(odd, x) is odd


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_sample_path_with_an_empty_batch(likelihood):
    m = 2 if likelihood == "discretized_logistic" else None
    x = torch.zeros(0, 2, 3)
    outputs = torch.zeros(4, 0, decoder_channels(likelihood, 2, num_mixtures=m), 3)
    assert log_likelihood(x, outputs, likelihood).shape == (4, 0)
