"""Tests for gaussian_log_prob and gaussian_mixture_log_prob against torch.distributions."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from genlatent.functional import gaussian_log_prob, gaussian_mixture_log_prob

SEEDS = st.integers(0, 2**31 - 1)


@settings(deadline=None, max_examples=30)
@given(seed=SEEDS, batch=st.integers(0, 4), dim=st.integers(1, 6))
def test_log_prob_matches_normal(seed, batch, dim):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    log_var = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    noise = torch.randn(3, batch, dim, generator=g, dtype=torch.float64)
    z = mean + torch.exp(0.5 * log_var) * noise
    expected = Normal(mean, torch.exp(0.5 * log_var)).log_prob(z).sum(dim=-1)
    torch.testing.assert_close(gaussian_log_prob(z, mean, log_var), expected)
    torch.testing.assert_close(gaussian_log_prob(z, mean, log_var, noise=noise), expected)


@settings(deadline=None, max_examples=30)
@given(
    seed=SEEDS,
    components=st.integers(1, 7),
    dim=st.integers(1, 5),
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
)
def test_mixture_matches_mixture_same_family(seed, components, dim, lead):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(components, dim, generator=g, dtype=torch.float64) * 2
    log_vars = torch.randn(components, dim, generator=g, dtype=torch.float64)
    z = torch.randn(*lead, dim, generator=g, dtype=torch.float64) * 2
    mixture = MixtureSameFamily(
        Categorical(logits=torch.zeros(components, dtype=torch.float64)),
        Independent(Normal(means, torch.exp(0.5 * log_vars)), 1),
    )
    got = gaussian_mixture_log_prob(z, means, log_vars)
    assert got.shape == tuple(lead)
    torch.testing.assert_close(got, mixture.log_prob(z))


def test_mixture_gradients_match():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    log_vars = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gaussian_mixture_log_prob, (z, means, log_vars))


def test_mixture_bad_shapes():
    with pytest.raises(ValueError, match=r"means and log_vars must have one shape \(K, D\)"):
        gaussian_mixture_log_prob(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"with D = z.shape\[-1\] = 2"):
        gaussian_mixture_log_prob(torch.zeros(2, 2), torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(TypeError, match="means must have a floating-point dtype"):
        gaussian_mixture_log_prob(torch.zeros(2, 3), torch.zeros(4, 3, dtype=torch.long), None)
