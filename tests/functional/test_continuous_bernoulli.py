"""Tests for the continuous Bernoulli: normalisation, torch's reference, the band near 1/2."""

import math

import mpmath
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import ContinuousBernoulli

from genlatent.functional import (
    continuous_bernoulli_log_likelihood,
    continuous_bernoulli_log_norm,
    continuous_bernoulli_mean,
)
from genlatent.functional.continuous_bernoulli import TAYLOR_BAND

# logits across the range: the band edge, just inside and outside it, 0, tiny, large
LOGITS = [-100.0, -30.0, -5.0, -1.0, -0.5, -0.4999, -0.2, -1e-3, 0.0, 1e-7, 0.3, 0.5001, 2.0]
LOGITS += [10.0, 50.0, 100.0]


def _density(x, logit):
    """p(x) on a grid x (N,) for one logit, through the per-example log-likelihood."""
    logits = torch.full((x.shape[0], 1), logit, dtype=torch.float64)
    return continuous_bernoulli_log_likelihood(x.unsqueeze(1), logits).exp()


def _exact_log_norm(logit):
    """log C = log(l / tanh(l / 2)) in 50-digit arithmetic (log 2 at l = 0)."""
    mpmath.mp.dps = 50
    u = mpmath.mpf(logit) / 2
    return float(mpmath.log(2) if u == 0 else mpmath.log(2 * u / mpmath.tanh(u)))


def _exact_mean(logit):
    mpmath.mp.dps = 50
    u = mpmath.mpf(logit) / 2
    return 0.5 if u == 0 else float((1 + mpmath.coth(u) - 1 / u) / 2)


@pytest.mark.parametrize("logit", LOGITS)
def test_density_integrates_to_one(logit):
    # trapezoid rule on 200,001 points: for a density ~ l e^{-l x} the relative error is
    # about (h l)^2 / 12 = (5e-6 * 100)^2 / 12 ~ 2e-8 at the largest |l| here
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    total = torch.trapezoid(_density(x, logit), x)
    assert abs(total.item() - 1.0) < 1e-7


@pytest.mark.parametrize("logit", LOGITS)
def test_mean_is_the_first_moment(logit):
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    moment = torch.trapezoid(x * _density(x, logit), x).item()
    mean = continuous_bernoulli_mean(torch.tensor(logit, dtype=torch.float64)).item()
    assert abs(moment - mean) < 1e-7
    assert math.isclose(mean, _exact_mean(logit), rel_tol=1e-13, abs_tol=1e-15)


@settings(deadline=None, max_examples=40)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(0, 4),
    magnitude=st.floats(0.05, 15.0),
)
def test_matches_torch_away_from_its_problem_zones(seed, batch, magnitude):
    # torch's ContinuousBernoulli is exact in float64 outside its band around lambda = 1/2
    # (|logits| < 0.004) and while sigmoid(logits) does not round to 0 or 1
    g = torch.Generator().manual_seed(seed)
    sign = torch.randint(0, 2, (batch, 2, 3), generator=g) * 2 - 1
    logits = sign * magnitude * (0.5 + torch.rand(batch, 2, 3, generator=g, dtype=torch.float64))
    x = torch.rand(batch, 2, 3, generator=g, dtype=torch.float64)
    expected = ContinuousBernoulli(logits=logits).log_prob(x).sum(dim=(1, 2))
    torch.testing.assert_close(continuous_bernoulli_log_likelihood(x, logits), expected)
    torch.testing.assert_close(
        continuous_bernoulli_log_likelihood(x, logits, reduction="sum"), expected.sum()
    )
    torch.testing.assert_close(
        continuous_bernoulli_mean(logits), ContinuousBernoulli(logits=logits).mean
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_norm_and_mean_match_high_precision_across_the_band(dtype):
    # the series is truncated with an error < 5e-16 (log C) and < 1e-19 (mean) in the band;
    # outside it the closed form loses only rounding
    edge = TAYLOR_BAND
    logits = [0.0, 1e-30, 1e-8, 1e-3, 0.1, edge - 1e-6, edge, edge + 1e-6, 0.7, 1.5, 40.0]
    logits = logits + [-v for v in logits]
    tensor = torch.tensor(logits, dtype=dtype)
    got_norm = continuous_bernoulli_log_norm(tensor).double()
    got_mean = continuous_bernoulli_mean(tensor).double()
    want_norm = torch.tensor([_exact_log_norm(v) for v in tensor.tolist()], dtype=torch.float64)
    want_mean = torch.tensor([_exact_mean(v) for v in tensor.tolist()], dtype=torch.float64)
    tolerance = 4 * torch.finfo(dtype).eps  # 4 ulp of values ~1
    torch.testing.assert_close(got_norm, want_norm, rtol=0, atol=tolerance)
    torch.testing.assert_close(got_mean, want_mean, rtol=0, atol=tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_smooth_across_the_band_edge(dtype):
    # one ulp either side of the edge: the series and the closed form agree to rounding
    edge = torch.tensor(TAYLOR_BAND, dtype=dtype)
    below = torch.nextafter(edge, torch.tensor(0.0, dtype=dtype))
    above = torch.nextafter(edge, torch.tensor(1.0, dtype=dtype))
    ulp = torch.finfo(dtype).eps
    for fn in (continuous_bernoulli_log_norm, continuous_bernoulli_mean):
        assert abs(fn(above) - fn(below)).item() < 4 * ulp


def test_gradients_are_finite_and_match_high_precision():
    logits = torch.tensor([0.0, 1e-6, -0.3, TAYLOR_BAND, 0.6, -7.0, 80.0, -1e4], requires_grad=True)
    continuous_bernoulli_log_norm(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()
    mpmath.mp.dps = 50
    for value, grad in zip(logits.tolist(), logits.grad.tolist(), strict=True):
        exact = float(mpmath.diff(lambda t: mpmath.log(t / mpmath.tanh(t / 2)), value))
        if value == 0.0:
            exact = 0.0  # the derivative of an even function at 0
        assert math.isclose(grad, exact, rel_tol=1e-5, abs_tol=1e-7), (value, grad, exact)


def test_gradcheck_float64_inside_and_outside_the_band():
    x = torch.rand(2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logits = torch.tensor(
        [[0.0, 0.2, -0.49, 0.51, 3.0], [-3.0, 1e-4, 0.4, -0.6, 12.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    assert torch.autograd.gradcheck(
        lambda lg: continuous_bernoulli_log_likelihood(x, lg), (logits,)
    )
    assert torch.autograd.gradcheck(continuous_bernoulli_mean, (logits,))


def test_saturated_logits_stay_finite():
    x = torch.tensor([[0.0, 1.0, 0.5]])
    value = continuous_bernoulli_log_likelihood(x, torch.tensor([[1e4, -1e4, 1e4]]))
    assert torch.isfinite(value).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"x and logits must have the same shape"):
        continuous_bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"x must have a batch dimension \(B, \*\), got a scalar"):
        continuous_bernoulli_log_likelihood(torch.tensor(0.5), torch.tensor(0.0))
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        continuous_bernoulli_log_likelihood(torch.full((1, 2), 1.5), torch.zeros(1, 2))
    with pytest.raises(TypeError, match="logits must have a floating-point dtype"):
        continuous_bernoulli_log_likelihood(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.long))
