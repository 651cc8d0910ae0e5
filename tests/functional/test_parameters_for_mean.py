"""`parameters_for_mean`: the decoder output whose likelihood has a given mean.

Checked against the definitions: the continuous Bernoulli's mean from Loaiza-Ganem and
Cunningham's eq. 8 in high precision (mpmath), and the maximum-likelihood property of the
three exponential families (the gradient of the data's log-likelihood, computed with
torch's own distributions, vanishes at the parameters of the data's mean).
"""

import mpmath
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import ContinuousBernoulli, Normal

from genlatent.functional import continuous_bernoulli_logits, parameters_for_mean
from genlatent.functional.likelihood import MEAN_CLAMP


def _paper_mean(logit: float) -> float:
    """E[x] = lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)), lambda = sigmoid(logit)."""
    with mpmath.workdps(1000):  # lambda = e^-1000 must not round 1 - 2 lambda to 1
        lam = 1 / (1 + mpmath.exp(-mpmath.mpf(logit)))
        return float(lam / (2 * lam - 1) + 1 / (2 * mpmath.atanh(1 - 2 * lam)))


@pytest.mark.parametrize("mean", [1e-3, 0.01, 0.2, 0.45, 0.499, 0.501, 0.7, 0.99, 0.999])
def test_continuous_bernoulli_logits_have_the_papers_mean(mean):
    logit = float(continuous_bernoulli_logits(torch.tensor([mean], dtype=torch.float64)))
    assert _paper_mean(logit) == pytest.approx(mean, rel=1e-9)


def test_continuous_bernoulli_logits_are_not_the_bernoulli_logits():
    mean = torch.tensor([0.2, 0.8], dtype=torch.float64)
    # the CB mean lies between sigmoid(l) and 1/2, so its logits are further from 0
    assert (continuous_bernoulli_logits(mean).abs() > torch.logit(mean).abs()).all()


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_continuous_bernoulli_logits_refuse_a_mean_outside_the_open_interval(bad):
    with pytest.raises(ValueError, match="mean must lie strictly between 0 and 1"):
        continuous_bernoulli_logits(torch.tensor([0.5, bad]))


def _log_likelihood(x: torch.Tensor, params: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The data's total log-likelihood under one parameter per value, by torch's definitions."""
    params = params.expand_as(x)
    if likelihood == "bernoulli":
        return -F.binary_cross_entropy_with_logits(params, x, reduction="sum")
    if likelihood == "continuous_bernoulli":
        return ContinuousBernoulli(logits=params, validate_args=False).log_prob(x).sum()
    return Normal(params, 1.0).log_prob(x).sum()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    likelihood=st.sampled_from(["bernoulli", "continuous_bernoulli", "gaussian"]),
)
def test_the_parameters_of_the_mean_maximise_the_datas_likelihood(seed, likelihood):
    generator = torch.Generator().manual_seed(seed)
    # grey levels away from the clamp and from the CB's band at 1/2 (where torch's own
    # log-normaliser is a two-term expansion)
    x = torch.rand(64, 5, generator=generator, dtype=torch.float64) * 0.6 + 0.05
    params = parameters_for_mean(x.mean(dim=0), likelihood).requires_grad_(True)
    (gradient,) = torch.autograd.grad(_log_likelihood(x, params, likelihood), params)
    # exponential families: d/dparam sum log p = N (mean(x) - E[x]) = 0 at the optimum
    torch.testing.assert_close(gradient, torch.zeros_like(gradient), atol=1e-6, rtol=0)


def test_a_mean_of_zero_or_one_is_clamped():
    mean = torch.tensor([0.0, 1.0])
    expected = torch.logit(torch.tensor([MEAN_CLAMP, 1 - MEAN_CLAMP]))
    torch.testing.assert_close(parameters_for_mean(mean, "bernoulli"), expected)
    logits = parameters_for_mean(mean.double(), "continuous_bernoulli")
    assert [_paper_mean(float(v)) for v in logits] == pytest.approx(
        [MEAN_CLAMP, 1 - MEAN_CLAMP], rel=1e-9
    )


def test_the_gaussian_mean_is_itself_and_unbounded():
    mean = torch.tensor([-3.0, 0.5, 7.0])
    torch.testing.assert_close(parameters_for_mean(mean, "gaussian"), mean)


def test_parameters_for_mean_refuses_what_it_cannot_set():
    with pytest.raises(
        ValueError, match=r"likelihood must be one of .* got 'discretized_logistic'"
    ):
        parameters_for_mean(torch.rand(3), "discretized_logistic")
    with pytest.raises(ValueError, match=r"mean must be in \[0, 1\]"):
        parameters_for_mean(torch.tensor([0.5, 2.0]), "bernoulli")
    with pytest.raises(TypeError, match="mean must have a floating-point dtype"):
        parameters_for_mean(torch.tensor([0, 1]), "bernoulli")
