"""Tests for iwae_loss against brute-force importance weights from torch.distributions."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Normal

from genlatent.losses import iwae_loss

SEEDS = st.integers(0, 2**31 - 1)


def _case(seed, count, batch, dim=3, features=5, likelihood="bernoulli"):
    """K latents per example drawn from a posterior, and a decoder output for each."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, features, generator=g, dtype=torch.float64)
    mean = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    log_var = torch.randn(batch, dim, generator=g, dtype=torch.float64) * 0.5
    noise = torch.randn(count, batch, dim, generator=g, dtype=torch.float64)
    z = mean + torch.exp(0.5 * log_var) * noise
    weight = torch.randn(dim, features, generator=g, dtype=torch.float64)
    output = z @ weight  # a linear "decoder": (K, B, features)
    return x, output, z, mean, log_var, noise


def _log_px(x, output, likelihood):
    if likelihood == "bernoulli":
        return Bernoulli(logits=output, validate_args=False).log_prob(x).sum(dim=-1)
    return Normal(output, 1.0).log_prob(x).sum(dim=-1)


def _brute_force_log_weights(x, output, z, mean, log_var, likelihood):
    """(K, B) log w from torch.distributions' densities, sample by sample."""
    rows = []
    for k in range(z.shape[0]):
        prior = Normal(torch.zeros_like(z[k]), 1.0).log_prob(z[k]).sum(dim=-1)
        posterior = Normal(mean, torch.exp(0.5 * log_var)).log_prob(z[k]).sum(dim=-1)
        rows.append(_log_px(x, output[k], likelihood) + prior - posterior)
    return torch.stack(rows)


@settings(deadline=None, max_examples=30)
@given(
    seed=SEEDS,
    count=st.integers(1, 6),
    batch=st.integers(1, 4),
    likelihood=st.sampled_from(["bernoulli", "gaussian"]),
    with_noise=st.booleans(),
)
def test_matches_brute_force_importance_weights(seed, count, batch, likelihood, with_noise):
    x, output, z, mean, log_var, noise = _case(seed, count, batch)
    out = iwae_loss(
        x,
        output,
        z,
        mean,
        log_var,
        noise=noise if with_noise else None,
        likelihood=likelihood,
        reduction="none",
    )
    log_w = _brute_force_log_weights(x, output, z, mean, log_var, likelihood)
    torch.testing.assert_close(out.loss, -(torch.logsumexp(log_w, dim=0) - math.log(count)))
    reconstruction = -torch.stack([_log_px(x, o, likelihood) for o in output]).mean(dim=0)
    torch.testing.assert_close(out.reconstruction_loss, reconstruction)
    torch.testing.assert_close(out.elbo_loss, out.reconstruction_loss + out.kl)
    # Jensen: the bound is at least the average of the log weights, for every draw
    assert (-out.loss >= log_w.mean(dim=0) - 1e-12).all()


def test_one_sample_is_the_single_sample_elbo_with_monte_carlo_kl():
    x, output, z, mean, log_var, noise = _case(0, 1, 4)
    out = iwae_loss(x, output, z, mean, log_var, noise=noise, reduction="none")
    log_px = _log_px(x, output[0], "bernoulli")
    monte_carlo_kl = Normal(mean, torch.exp(0.5 * log_var)).log_prob(z[0]).sum(dim=-1) - Normal(
        0.0, 1.0
    ).log_prob(z[0]).sum(dim=-1)
    torch.testing.assert_close(out.loss, -log_px + monte_carlo_kl)
    torch.testing.assert_close(out.reconstruction_loss, -log_px)


def test_equal_weights_give_the_common_value():
    # q equal to the prior and a decoder that ignores z: every log w is log p(x | .)
    x = torch.full((2, 3), 0.25)
    z = torch.randn(7, 2, 4, generator=torch.Generator().manual_seed(0))
    out = iwae_loss(x, torch.zeros(7, 2, 3), z, torch.zeros(2, 4), torch.zeros(2, 4))
    torch.testing.assert_close(out.loss, torch.tensor(3 * math.log(2)))


def test_reductions_are_consistent():
    x, output, z, mean, log_var, _ = _case(1, 3, 5)
    none = iwae_loss(x, output, z, mean, log_var, reduction="none")
    for reduction, fn in (("sum", torch.sum), ("mean", torch.mean)):
        reduced = iwae_loss(x, output, z, mean, log_var, reduction=reduction)
        for field in none._fields:
            torch.testing.assert_close(getattr(reduced, field), fn(getattr(none, field)))


def test_gradcheck_float64():
    x, output, z, mean, log_var, _ = _case(2, 3, 2)
    for t in (output, mean, log_var):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda o, m, lv: iwae_loss(x, o, z, m, lv).loss, (output, mean, log_var)
    )


def test_bad_arguments():
    x, output, z, mean, log_var, noise = _case(0, 2, 3)
    with pytest.raises(ValueError, match=r"decoder_output must have a leading sample dimension"):
        iwae_loss(x, output[0], z, mean, log_var)
    with pytest.raises(ValueError, match=r"z must have shape \(K, B, D\) with \(B, D\) = \(3, 3\)"):
        iwae_loss(x, output, z[:, :2], mean, log_var)
    with pytest.raises(ValueError, match=r"noise must have the shape of z \(2, 3, 3\)"):
        iwae_loss(x, output, z, mean, log_var, noise=noise[:1])
    with pytest.raises(ValueError, match=r"mean and log_var must have one shape \(B, D\)"):
        iwae_loss(x, output, z, mean, log_var[:, :2])
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        iwae_loss(x, output, z, mean, log_var, reduction="avg")
    with pytest.raises(ValueError, match=r"likelihood must be one of"):
        iwae_loss(x, output, z, mean, log_var, likelihood="poisson")
    with pytest.raises(ValueError, match=r"log_prior must have shape \(K, B\) = \(2, 3\)"):
        iwae_loss(x, output, z, mean, log_var, log_prior=torch.zeros(3))
    with pytest.raises(ValueError, match=r"x must have a batch dimension \(B, \*\), got a scalar"):
        iwae_loss(x[0, 0], output, z, mean, log_var)
