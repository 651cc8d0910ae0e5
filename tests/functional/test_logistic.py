"""Tests for the discretized mixture of logistics against brute-force CDF differences."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import AffineTransform, SigmoidTransform, TransformedDistribution, Uniform

from genlatent.functional import (
    discretized_logistic_mixture_log_likelihood,
    discretized_logistic_mixture_mean,
    split_logistic_mixture,
)
from genlatent.metrics.stats import bits_per_dim


def _params(seed, batch, channels, num_mixtures, *, spread=1.0, dtype=torch.float64):
    """Random (B, 3 M C) parameters: logits ~ N(0, 1), means on [-1.5, 1.5], log-scales."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, num_mixtures * channels)
    logits = torch.randn(shape, generator=g, dtype=dtype)
    means = (torch.rand(shape, generator=g, dtype=dtype) * 3 - 1.5) * spread
    log_scales = torch.rand(shape, generator=g, dtype=dtype) * 6 - 5  # [-5, 1]
    return torch.cat([logits, means, log_scales], dim=1)


def _logistic_cdf(t, loc, scale):
    """The CDF of Logistic(loc, scale) from torch.distributions, an independent reference."""
    logistic = TransformedDistribution(
        Uniform(torch.zeros_like(loc), torch.ones_like(loc)),
        [SigmoidTransform().inv, AffineTransform(loc, scale)],
    )
    return logistic.cdf(t)


def _brute_force_probs(params, channels, num_mixtures, num_bins=256):
    """P(bin k) for every bin: (B, C, n), by CDF differences with the edges at -inf and +inf."""
    logits, means, log_scales = split_logistic_mixture(params, channels, num_mixtures)
    weights = torch.softmax(logits, dim=1)  # (B, M, C)
    last = num_bins - 1
    centres = torch.arange(num_bins, dtype=params.dtype) * 2 / last - 1
    loc, scale = means.unsqueeze(-1), log_scales.exp().unsqueeze(-1)
    cdf_upper = _logistic_cdf((centres + 1 / last).expand(*loc.shape[:-1], -1), loc, scale)
    cdf_lower = _logistic_cdf((centres - 1 / last).expand(*loc.shape[:-1], -1), loc, scale)
    cdf_upper[..., -1] = 1.0  # the last bin reaches +inf
    cdf_lower[..., 0] = 0.0  # the first bin reaches -inf
    return (weights.unsqueeze(-1) * (cdf_upper - cdf_lower)).sum(dim=1)


def _every_bin(params, num_bins=256):
    """x and params laid out so that example k of the batch is bin k for every value."""
    batch = params.shape[0]
    levels = torch.arange(num_bins, dtype=params.dtype) / (num_bins - 1)
    return levels.repeat_interleave(batch), params.repeat(num_bins, 1)


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), num_mixtures=st.integers(1, 4))
def test_probabilities_over_the_bins_sum_to_one_per_value(seed, num_mixtures):
    params = _params(seed, 3, 1, num_mixtures)
    x, repeated = _every_bin(params)
    log_p = discretized_logistic_mixture_log_likelihood(
        x.unsqueeze(1), repeated, num_mixtures=num_mixtures
    )
    total = log_p.reshape(256, 3).exp().sum(dim=0)
    torch.testing.assert_close(total, torch.ones(3, dtype=torch.float64))


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), num_mixtures=st.integers(1, 3))
def test_matches_brute_force_cdf_differences(seed, num_mixtures):
    params = _params(seed, 2, 1, num_mixtures)
    x, repeated = _every_bin(params)
    log_p = discretized_logistic_mixture_log_likelihood(
        x.unsqueeze(1), repeated, num_mixtures=num_mixtures
    ).reshape(256, 2)
    expected = _brute_force_probs(params, 1, num_mixtures)[:, 0, :].T  # (256, B)
    # the brute force subtracts CDFs near 1: its absolute error is a few float64 ulp of 1
    torch.testing.assert_close(log_p.exp(), expected, rtol=1e-9, atol=1e-15)


def test_images_sum_over_values_and_channels_are_independent():
    g = torch.Generator().manual_seed(1)
    image_params = torch.randn(2, 18, 4, 4, generator=g, dtype=torch.float64)  # M = 2, C = 3
    x = torch.randint(0, 256, (2, 3, 4, 4), generator=g).double() / 255
    whole = discretized_logistic_mixture_log_likelihood(x, image_params, num_mixtures=2)
    # the same values one at a time, flat
    logits, means, log_scales = split_logistic_mixture(image_params, 3, 2)  # (B, M, C, H, W)
    per_value = torch.cat([logits, means, log_scales], dim=1)  # (B, 3M, C, H, W)
    flat_params = per_value.permute(0, 2, 3, 4, 1).reshape(-1, 6)
    one_by_one = discretized_logistic_mixture_log_likelihood(
        x.reshape(-1, 1), flat_params, num_mixtures=2
    )
    torch.testing.assert_close(whole, one_by_one.reshape(2, -1).sum(dim=1))


def test_edges_take_the_tails():
    # x = 0 gets everything below -1 + 1/255, x = 1 everything above 1 - 1/255
    params = torch.tensor([[0.0, 0.3, math.log(0.2)]], dtype=torch.float64)  # M = 1
    low = discretized_logistic_mixture_log_likelihood(
        torch.zeros(1, 1, dtype=torch.float64), params, num_mixtures=1
    ).exp()
    high = discretized_logistic_mixture_log_likelihood(
        torch.ones(1, 1, dtype=torch.float64), params, num_mixtures=1
    ).exp()
    loc, scale = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)
    torch.testing.assert_close(low[0], _logistic_cdf(torch.tensor(-1 + 1 / 255.0), loc, scale))
    torch.testing.assert_close(high[0], 1 - _logistic_cdf(torch.tensor(1 - 1 / 255.0), loc, scale))


def test_extreme_parameters_stay_finite_with_finite_gradients():
    # far-off means, tiny and huge scales, in float32: no NaN, no -inf, gradients finite
    x = torch.tensor([[0.0, 1.0, 0.5, 0.2, 0.0, 1.0]])
    params = torch.tensor(
        [[0.0] * 6 + [30.0, -30.0, 0.5, 0.2, -1.0, 1.0] + [-50.0, -9.0, -7.0, 8.0, -20.0, -20.0]],
        requires_grad=True,
    )
    value = discretized_logistic_mixture_log_likelihood(x, params, num_mixtures=1)
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert torch.isfinite(params.grad).all()


def test_log_scales_are_clamped_at_minus_seven():
    x = torch.full((1, 1), 100 / 255)
    narrow = torch.tensor([[0.0, 0.1, -20.0]])
    clamped = torch.tensor([[0.0, 0.1, -7.0]])
    torch.testing.assert_close(
        discretized_logistic_mixture_log_likelihood(x, narrow, num_mixtures=1),
        discretized_logistic_mixture_log_likelihood(x, clamped, num_mixtures=1),
    )


def test_values_are_read_as_their_nearest_bin():
    params = _params(3, 1, 1, 2)
    exact = torch.full((1, 1), 17 / 255, dtype=torch.float64)
    nearby = exact + 0.4 / 255
    torch.testing.assert_close(
        discretized_logistic_mixture_log_likelihood(exact, params, num_mixtures=2),
        discretized_logistic_mixture_log_likelihood(nearby, params, num_mixtures=2),
    )


def test_gradcheck_float64():
    params = _params(4, 2, 2, 2).requires_grad_(True)
    x = torch.tensor([[0.0, 30 / 255], [200 / 255, 1.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda p: discretized_logistic_mixture_log_likelihood(x, p, num_mixtures=2), (params,)
    )


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), num_mixtures=st.integers(1, 3))
def test_mean_is_the_sum_over_bins(seed, num_mixtures):
    params = _params(seed, 2, 1, num_mixtures, spread=1.5)
    probs = _brute_force_probs(params, 1, num_mixtures)  # (B, C, 256)
    levels = torch.arange(256, dtype=torch.float64) / 255
    expected = (probs * levels).sum(dim=-1)
    mean = discretized_logistic_mixture_mean(params, num_channels=1, num_mixtures=num_mixtures)
    torch.testing.assert_close(mean, expected)


def test_reductions_and_bits_per_dim():
    params = _params(5, 4, 3, 2)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3), generator=g).double() / 255
    none = discretized_logistic_mixture_log_likelihood(x, params, num_mixtures=2)
    assert none.shape == (4,)
    assert (none <= 0).all()
    total = discretized_logistic_mixture_log_likelihood(x, params, num_mixtures=2, reduction="sum")
    torch.testing.assert_close(total, none.sum())
    bits = bits_per_dim(-none, 3)
    torch.testing.assert_close(bits, -none / (3 * math.log(2)))


def test_bad_arguments():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"params must have shape \(B, 3 \* num_mixtures \* C"):
        discretized_logistic_mixture_log_likelihood(x, torch.zeros(2, 8), num_mixtures=1)
    with pytest.raises(ValueError, match=r"num_bins must be >= 2, got 1"):
        discretized_logistic_mixture_log_likelihood(
            x, torch.zeros(2, 9), num_mixtures=1, num_bins=1
        )
    with pytest.raises(ValueError, match=r"num_mixtures must be >= 1, got 0"):
        discretized_logistic_mixture_log_likelihood(x, torch.zeros(2, 9), num_mixtures=0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, \*\), got \(2,\)"):
        discretized_logistic_mixture_log_likelihood(
            torch.zeros(2), torch.zeros(2, 3), num_mixtures=1
        )
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        discretized_logistic_mixture_log_likelihood(x - 1, torch.zeros(2, 9), num_mixtures=1)
    with pytest.raises(ValueError, match=r"params must have 3 \* num_mixtures \* C = 6 channels"):
        split_logistic_mixture(torch.zeros(2, 5), 2, 1)
