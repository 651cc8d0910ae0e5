"""Tests for bernoulli_log_likelihood."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, ContinuousBernoulli

from genlatent.functional import bernoulli_log_likelihood


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(0, 4), features=st.integers(1, 8))
def test_matches_torch_bernoulli_on_binary_data(seed, batch, features):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, 1, features, generator=g, dtype=torch.float64) * 3
    x = torch.randint(0, 2, logits.shape, generator=g).double()
    expected = Bernoulli(logits=logits).log_prob(x).sum(dim=(1, 2))
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), expected)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits, reduction="sum"), expected.sum())


def test_matches_probability_form_on_grey_levels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 784, generator=g, dtype=torch.float64)
    logits = torch.randn(5, 784, generator=g, dtype=torch.float64)
    expected = -F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum(-1)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), expected)


def test_saturated_logits_stay_finite():
    x = torch.tensor([[0.0, 1.0, 0.5]])
    logits = torch.tensor([[1e4, -1e4, 1e4]])
    value = bernoulli_log_likelihood(x, logits)
    assert torch.isfinite(value).all()
    # probability form saturates at log(0) -> clamped -100 per value, the logit form is exact
    assert value.item() == pytest.approx(-(1e4 + 1e4 + 0.5 * 1e4), rel=1e-6)


def test_not_the_continuous_bernoulli():
    # The tutorial's BCE is the unnormalised Bernoulli on grey levels; document by test that
    # it differs from the properly normalised continuous Bernoulli density.
    x, logits = torch.full((1, 3), 0.3), torch.zeros(1, 3)
    cb = ContinuousBernoulli(logits=logits).log_prob(x).sum()
    assert not torch.isclose(bernoulli_log_likelihood(x, logits).sum(), cb)


def test_gradcheck_float64():
    x = torch.rand(3, 4, dtype=torch.float64)
    logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda lg: bernoulli_log_likelihood(x, lg), (logits,))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"x and logits must have the same shape"):
        bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="logits must have a floating-point dtype"):
        bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.int32))
