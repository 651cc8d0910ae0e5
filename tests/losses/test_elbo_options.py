"""Tests for the options of vae_loss: beta, warm-up, free bits, capacity, and elbo_loss."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

from genlatent.functional import bernoulli_log_likelihood, gaussian_kl
from genlatent.losses import vae_loss

SEEDS = st.integers(0, 2**31 - 1)


def _inputs(seed, batch, dim=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 3, 3, generator=g, dtype=dtype)
    logits = torch.randn(batch, 1, 3, 3, generator=g, dtype=dtype) * 2
    mean = torch.randn(batch, dim, generator=g, dtype=dtype)
    log_var = torch.randn(batch, dim, generator=g, dtype=dtype)
    return x, logits, mean, log_var


def _reference_terms(x, logits, mean, log_var):
    """Per example: -log p(x|z) by the BCE formula and the per-dimension KL, (B,) and (B, D)."""
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    reconstruction = reconstruction.flatten(1).sum(dim=1)
    posterior = Normal(mean, torch.exp(0.5 * log_var))
    prior = Normal(torch.zeros_like(mean), torch.ones_like(mean))
    return reconstruction, kl_divergence(posterior, prior)


def test_defaults_reproduce_the_plain_elbo_exactly():
    # float32, as in training: the default path is bit for bit the formula it had before
    x, logits, mean, log_var = _inputs(0, 5, dtype=torch.float32)
    out = vae_loss(x, logits, mean, log_var, reduction="none")
    reconstruction = -bernoulli_log_likelihood(x, logits)
    kl = gaussian_kl(mean, log_var, reduction="none")
    assert torch.equal(out.loss, reconstruction + 1.0 * kl)
    assert torch.equal(out.reconstruction_loss, reconstruction)
    assert torch.equal(out.kl, kl)
    assert torch.equal(out.elbo_loss, out.loss)
    # options at values that change nothing give the same numbers exactly
    same = vae_loss(
        x, logits, mean, log_var, reduction="none", warmup_steps=10, step=10, free_bits=0.0
    )
    assert torch.equal(same.loss, out.loss)


@settings(deadline=None, max_examples=30)
@given(seed=SEEDS, batch=st.integers(1, 5), beta=st.floats(0, 10))
def test_beta_scales_the_kl_term_exactly(seed, batch, beta):
    x, logits, mean, log_var = _inputs(seed, batch)
    out = vae_loss(x, logits, mean, log_var, beta=beta, reduction="none")
    reconstruction, kl_per_dim = _reference_terms(x, logits, mean, log_var)
    torch.testing.assert_close(out.loss, reconstruction + beta * kl_per_dim.sum(dim=1))
    torch.testing.assert_close(out.elbo_loss, reconstruction + kl_per_dim.sum(dim=1))
    if beta == 0:
        assert torch.equal(out.loss, out.reconstruction_loss)


@pytest.mark.parametrize("warmup_steps", [1, 7, 100])
def test_warmup_is_linear_and_reaches_beta_at_step_n(warmup_steps):
    x, logits, mean, log_var = _inputs(1, 3)
    beta = 2.5
    full = vae_loss(x, logits, mean, log_var, beta=beta)
    for step in [0, 1, warmup_steps // 2, warmup_steps - 1, warmup_steps, 3 * warmup_steps]:
        out = vae_loss(x, logits, mean, log_var, beta=beta, warmup_steps=warmup_steps, step=step)
        weight = beta * min(1.0, step / warmup_steps)
        torch.testing.assert_close(out.loss, out.reconstruction_loss + weight * out.kl)
        if step >= warmup_steps:
            assert torch.equal(out.loss, full.loss)
        torch.testing.assert_close(out.elbo_loss, full.elbo_loss)
    # no step (an evaluation): after the warm-up
    no_step = vae_loss(x, logits, mean, log_var, beta=beta, warmup_steps=warmup_steps)
    assert torch.equal(no_step.loss, full.loss)


def _free_bits_case():
    """Dimension 0 with a batch-mean KL far below 0.5 nat, dimension 1 far above it."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 6, generator=g, dtype=torch.float64)
    logits = torch.randn(4, 6, generator=g, dtype=torch.float64)
    mean = torch.tensor([[0.01, 2.0], [-0.02, -1.5], [0.0, 3.0], [0.03, 1.0]], dtype=torch.float64)
    log_var = torch.tensor([[0.01, -2.0], [0.0, -1.0], [-0.02, -3.0], [0.01, 0.0]])
    return x, logits, mean.requires_grad_(True), log_var.double().requires_grad_(True)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_free_bits_value_and_gradients(reduction):
    free_bits = 0.5
    x, logits, mean, log_var = _free_bits_case()
    reconstruction, kl_per_dim = _reference_terms(x, logits, mean, log_var)
    batch_mean = kl_per_dim.detach().mean(dim=0)
    assert batch_mean[0] < free_bits < batch_mean[1]
    out = vae_loss(x, logits, mean, log_var, free_bits=free_bits, reduction=reduction)
    # the formula: reconstruction + sum_d max(free_bits, mean_b KL_bd), per example
    expected = reconstruction.mean() + torch.clamp(kl_per_dim.mean(dim=0), min=free_bits).sum()
    scale = 1 if reduction == "mean" else x.shape[0]
    torch.testing.assert_close(out.loss, scale * expected)
    # the true KL is reported unchanged
    torch.testing.assert_close(out.kl, scale * kl_per_dim.sum(dim=1).mean())
    out.loss.backward()
    # below the threshold: exactly zero gradient
    assert torch.equal(mean.grad[:, 0], torch.zeros(4, dtype=torch.float64))
    assert torch.equal(log_var.grad[:, 0], torch.zeros(4, dtype=torch.float64))
    # above: the gradient of the plain KL of that dimension (torch.distributions)
    grad_mean, grad_log_var = torch.autograd.grad(
        scale * kl_per_dim[:, 1].mean(), (mean, log_var), retain_graph=True
    )
    torch.testing.assert_close(mean.grad[:, 1], grad_mean[:, 1])
    torch.testing.assert_close(log_var.grad[:, 1], grad_log_var[:, 1])


def test_free_bits_per_example_terms_average_to_the_formula():
    x, logits, mean, log_var = _free_bits_case()
    none = vae_loss(x, logits, mean, log_var, free_bits=0.5, reduction="none")
    mean_loss = vae_loss(x, logits, mean, log_var, free_bits=0.5)
    torch.testing.assert_close(none.loss.mean(), mean_loss.loss)


@settings(deadline=None, max_examples=30)
@given(
    seed=SEEDS,
    capacity=st.floats(0, 20),
    gamma=st.floats(0.1, 1000),
    step=st.integers(0, 30),
)
def test_capacity_term_is_the_formula(seed, capacity, gamma, step):
    x, logits, mean, log_var = _inputs(seed, 3)
    reconstruction, kl_per_dim = _reference_terms(x, logits, mean, log_var)
    kl = kl_per_dim.sum(dim=1)
    out = vae_loss(x, logits, mean, log_var, capacity=capacity, gamma=gamma, reduction="none")
    torch.testing.assert_close(out.loss, reconstruction + gamma * (kl - capacity).abs())
    annealed = vae_loss(
        x,
        logits,
        mean,
        log_var,
        capacity=capacity,
        gamma=gamma,
        warmup_steps=20,
        step=step,
        reduction="none",
    )
    target = capacity * min(1.0, step / 20)
    torch.testing.assert_close(annealed.loss, reconstruction + gamma * (kl - target).abs())
    torch.testing.assert_close(annealed.elbo_loss, reconstruction + kl)


def test_capacity_gamma_defaults_to_1000():
    x, logits, mean, log_var = _inputs(3, 2)
    out = vae_loss(x, logits, mean, log_var, capacity=1.0, reduction="none")
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 1000 * (out.kl - 1.0).abs())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"beta": -1}, ValueError, r"beta must be >= 0, got -1"),
        ({"beta": float("inf")}, ValueError, r"beta must be a finite number, got inf"),
        ({"free_bits": -0.5}, ValueError, r"free_bits must be >= 0, got -0.5"),
        ({"free_bits": "1"}, ValueError, r"free_bits must be a finite number, got '1'"),
        ({"warmup_steps": -1}, ValueError, r"warmup_steps must be >= 0, got -1"),
        ({"warmup_steps": 2.0}, TypeError, r"warmup_steps must be an int, got float"),
        ({"warmup_steps": 5, "step": -2}, ValueError, r"step must be >= 0, got -2"),
        ({"step": True}, TypeError, r"step must be an int, got bool"),
        ({"capacity": -1.0}, ValueError, r"capacity must be >= 0, got -1.0"),
        ({"capacity": 5.0, "gamma": -1.0}, ValueError, r"gamma must be >= 0, got -1.0"),
        ({"gamma": 10.0}, ValueError, r"gamma applies only with capacity, got gamma=10.0"),
        (
            {"capacity": 5.0, "beta": 4.0},
            ValueError,
            r"beta must be 1 when capacity is given \(gamma weighs the KL term\), got 4.0",
        ),
    ],
)
def test_bad_options(kwargs, error, match):
    x, logits, mean, log_var = _inputs(0, 2)
    with pytest.raises(error, match=match):
        vae_loss(x, logits, mean, log_var, **kwargs)


def test_a_given_kl_replaces_the_closed_form():
    x, logits, mean, log_var = _inputs(4, 3)
    kl = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    out = vae_loss(x, logits, mean, log_var, kl=kl, beta=2.0, reduction="none")
    torch.testing.assert_close(out.kl, kl)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 2.0 * kl)
    with pytest.raises(ValueError, match=r"kl must have shape \(B,\) = \(3,\), got \(2,\)"):
        vae_loss(x, logits, mean, log_var, kl=kl[:2])
    with pytest.raises(ValueError, match="free_bits needs the closed-form KL to N"):
        vae_loss(x, logits, mean, log_var, kl=kl, free_bits=1.0)
