"""Tests for vae_loss against the tutorial's formula and its own reductions."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.losses import vae_loss


def _tutorial_loss(x, x_hat, mean, log_var):
    # The seed experiment's loss, as written in the tutorial.
    reproduction_loss = F.binary_cross_entropy(x_hat, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
    return reproduction_loss + kld


def _inputs(seed, batch, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 4, 4, generator=g, dtype=dtype)
    logits = torch.randn(batch, 1, 4, 4, generator=g, dtype=dtype) * 2
    mean = torch.randn(batch, 3, generator=g, dtype=dtype)
    log_var = torch.randn(batch, 3, generator=g, dtype=dtype)
    return x, logits, mean, log_var


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 6))
def test_sum_equals_tutorial_loss(seed, batch):
    x, logits, mean, log_var = _inputs(seed, batch)
    ours = vae_loss(x, logits, mean, log_var, reduction="sum").loss
    torch.testing.assert_close(ours, _tutorial_loss(x, torch.sigmoid(logits), mean, log_var))


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(0, 6), beta=st.floats(0, 4))
def test_reductions_and_beta(seed, batch, beta):
    x, logits, mean, log_var = _inputs(seed, batch)
    none = vae_loss(x, logits, mean, log_var, beta=beta, reduction="none")
    assert none.loss.shape == none.kl.shape == none.reconstruction_loss.shape == (batch,)
    torch.testing.assert_close(none.loss, none.reconstruction_loss + beta * none.kl)
    total = vae_loss(x, logits, mean, log_var, beta=beta, reduction="sum")
    for field in ("loss", "reconstruction_loss", "kl", "elbo_loss"):
        torch.testing.assert_close(getattr(total, field), getattr(none, field).sum())
    if batch:
        mean_out = vae_loss(x, logits, mean, log_var, beta=beta)
        torch.testing.assert_close(mean_out.loss, none.loss.mean())


def test_gaussian_likelihood_is_half_squared_error_plus_constant():
    x, logits, mean, log_var = _inputs(0, 3)
    out = vae_loss(x, logits, mean, log_var, likelihood="gaussian", reduction="none")
    const = 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=x.dtype)) * 16
    torch.testing.assert_close(
        out.reconstruction_loss, 0.5 * (x - logits).pow(2).sum(dim=(1, 2, 3)) + const
    )


def test_gradcheck_float64():
    x, logits, mean, log_var = _inputs(1, 2)
    for t in (logits, mean, log_var):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda lg, m, lv: vae_loss(x, lg, m, lv).loss, (logits, mean, log_var)
    )


def test_saturated_logits_finite():
    x = torch.tensor([[0.0, 1.0]])
    out = vae_loss(x, torch.tensor([[200.0, -200.0]]), torch.zeros(1, 2), torch.zeros(1, 2))
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"likelihood": "poisson"}, ValueError, "likelihood must be one of"),
        ({"reduction": "batchmean"}, ValueError, "reduction must be one of"),
        ({"beta": float("nan")}, ValueError, "beta must be a finite number, got nan"),
    ],
)
def test_bad_options(kwargs, error, match):
    x, logits, mean, log_var = _inputs(0, 2)
    with pytest.raises(error, match=match):
        vae_loss(x, logits, mean, log_var, **kwargs)


def test_bad_shapes():
    x, logits, mean, log_var = _inputs(0, 2)
    with pytest.raises(ValueError, match=r"decoder_output must have the shape of x \(2, 1, 4, 4\)"):
        vae_loss(x, logits.flatten(1), mean, log_var)
    with pytest.raises(ValueError, match=r"mean must have shape \(B, D\) with B .* 2"):
        vae_loss(x, logits, mean[:1], log_var[:1])
    with pytest.raises(ValueError, match="mean and log_var must have the same shape"):
        vae_loss(x, logits, mean, log_var[:, :2])
