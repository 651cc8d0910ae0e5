"""Tests for reparameterize, gaussian_kl and gaussian_log_likelihood."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

from genlatent.functional import gaussian_kl, gaussian_log_likelihood, reparameterize

seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(0, 5)
dims = st.integers(1, 6)


def _gaussian_params(seed, batch, dim, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, dim, generator=g, dtype=dtype) * 2
    log_var = torch.randn(batch, dim, generator=g, dtype=dtype)
    return mean, log_var


@settings(deadline=None, max_examples=30)
@given(seed=seeds, batch=sizes, dim=dims)
def test_reparameterize_shape_and_gradients(seed, batch, dim):
    mean, log_var = _gaussian_params(seed, batch, dim)
    mean.requires_grad_(True)
    log_var.requires_grad_(True)
    z = reparameterize(mean, log_var, generator=torch.Generator().manual_seed(seed))
    assert z.shape == mean.shape
    z.sum().backward()
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(z.detach(), mean.detach() + torch.exp(0.5 * log_var.detach()) * eps)
    torch.testing.assert_close(mean.grad, torch.ones_like(mean))
    std = torch.exp(0.5 * log_var.detach())
    torch.testing.assert_close(log_var.grad, eps * std / 2)


def test_reparameterize_follows_dtype_and_matches_moments():
    mean = torch.full((200_000, 1), 3.0, dtype=torch.float64)
    log_var = torch.full_like(mean, math.log(4.0))
    z = reparameterize(mean, log_var, generator=torch.Generator().manual_seed(0))
    assert z.dtype == torch.float64
    # 200,000 draws: the standard error of the mean is 2 / sqrt(2e5) ~ 0.0045.
    assert abs(z.mean().item() - 3.0) < 0.03
    assert abs(z.std().item() - 2.0) < 0.03


def test_reparameterize_gradcheck_float64():
    mean = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    log_var = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)

    def fn(m, lv):
        return reparameterize(m, lv, generator=torch.Generator().manual_seed(7))

    assert torch.autograd.gradcheck(fn, (mean, log_var))


@settings(deadline=None, max_examples=30)
@given(seed=seeds, batch=st.integers(1, 5), dim=dims)
def test_kl_matches_torch_distributions(seed, batch, dim):
    mean, log_var = _gaussian_params(seed, batch, dim, torch.float64)
    expected = kl_divergence(
        Normal(mean, torch.exp(0.5 * log_var)), Normal(torch.zeros_like(mean), 1.0)
    ).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, log_var, reduction="none"), expected)
    assert (gaussian_kl(mean, log_var, reduction="none") >= 0).all()


@settings(deadline=None, max_examples=30)
@given(seed=seeds, batch=sizes, dim=dims)
def test_kl_reductions_are_consistent(seed, batch, dim):
    mean, log_var = _gaussian_params(seed, batch, dim)
    none = gaussian_kl(mean, log_var, reduction="none")
    assert none.shape == (batch,)
    torch.testing.assert_close(gaussian_kl(mean, log_var, reduction="sum"), none.sum())
    if batch:
        torch.testing.assert_close(gaussian_kl(mean, log_var, reduction="mean"), none.mean())


def test_kl_is_zero_at_prior_and_keeps_leading_dims():
    mean, log_var = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert gaussian_kl(mean, log_var, reduction="none").shape == (2, 3)
    assert gaussian_kl(mean, log_var, reduction="sum").item() == 0.0


def test_kl_gradcheck_float64():
    mean = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    log_var = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, lv: gaussian_kl(m, lv), (mean, log_var))


def test_kl_extreme_log_var_stays_finite():
    mean = torch.zeros(2, 3)
    log_var = torch.tensor([[-80.0, 0.0, 80.0], [-20.0, 20.0, 0.0]])
    assert torch.isfinite(gaussian_kl(mean, log_var, reduction="none")).all()


@settings(deadline=None, max_examples=30)
@given(seed=seeds, batch=sizes, dim=dims)
def test_gaussian_log_likelihood_matches_normal(seed, batch, dim):
    x, mean = _gaussian_params(seed, batch, dim, torch.float64)
    log_var = torch.full_like(x, 0.3)
    expected = Normal(mean, torch.exp(0.5 * log_var)).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_likelihood(x, mean, log_var=log_var), expected)
    torch.testing.assert_close(
        gaussian_log_likelihood(x, mean, log_var=0.3, reduction="sum"), expected.sum()
    )


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, r"mean and log_var .* \(2, 3\)"),
        ((torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), TypeError, "mean must have"),
        ((torch.zeros(2, 3), [0.0]), TypeError, "log_var must be a torch.Tensor, got list"),
        ((torch.tensor(0.0), torch.tensor(0.0)), ValueError, "at least 1 dim"),
    ],
)
def test_bad_gaussian_arguments(args, error, match):
    with pytest.raises(error, match=match):
        reparameterize(*args)
    with pytest.raises(error, match=match):
        gaussian_kl(*args)


def test_unknown_reduction():
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'avg'"):
        gaussian_kl(torch.zeros(1, 2), torch.zeros(1, 2), reduction="avg")


def test_log_likelihood_bad_shapes():
    with pytest.raises(ValueError, match=r"x and mean must have the same shape"):
        gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="batch dimension"):
        gaussian_log_likelihood(torch.tensor(1.0), torch.tensor(1.0))
