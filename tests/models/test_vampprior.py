"""Tests for the VampPrior in a VAE: its KL, IWAE weights and samples against references."""

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from genlatent import MLPDecoder, MLPEncoder
from genlatent.functional import standard_normal_draws
from genlatent.metrics import iwae_bound
from genlatent.models.vae import VAE, VampPrior


def _model(seed=0, components=5):
    torch.manual_seed(seed)
    init = torch.rand(components, 8)
    prior = VampPrior(components, (8,), init=init)
    return VAE(MLPEncoder(8, 16, 3), MLPDecoder(3, 16, 8), prior=prior)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _reference_prior(model):
    means, log_vars = model.encoder(model.prior.pseudo_inputs.clamp(0, 1))
    return MixtureSameFamily(
        Categorical(logits=torch.zeros(means.shape[0])),
        Independent(Normal(means, torch.exp(0.5 * log_vars)), 1),
    )


def test_loss_uses_the_monte_carlo_kl_under_the_mixture():
    model = _model()
    x = torch.rand(6, 8, generator=_gen(1))
    out = model(x, generator=_gen(2))
    posterior = Independent(Normal(out.mean, torch.exp(0.5 * out.log_var)), 1)
    kl = posterior.log_prob(out.z) - _reference_prior(model).log_prob(out.z)
    got = model.loss(x, generator=_gen(2), reduction="none")
    torch.testing.assert_close(got.kl, kl)
    torch.testing.assert_close(got.elbo_loss, got.reconstruction_loss + kl)
    got.loss.mean().backward()
    assert model.prior.pseudo_inputs.grad is not None
    assert model.prior.pseudo_inputs.grad.abs().sum() > 0


def test_iwae_metric_and_objective_use_the_prior():
    model = _model(1)
    x = torch.rand(4, 8, generator=_gen(3))
    with torch.no_grad():
        bound = iwae_bound(model, x, num_samples=6, chunk_size=4, generator=_gen(5))
        objective = model.loss(x, iwae_samples=6, generator=_gen(5), reduction="none")
        # brute force with torch.distributions on the same draws
        mean, log_var = model.encode(x)
        noise = standard_normal_draws(6, mean.shape, generator=_gen(5))
        z = mean + torch.exp(0.5 * log_var) * noise
        logits = model.decode(z)
        log_px = torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(x)
        log_w = (
            log_px.sum(dim=-1)
            + _reference_prior(model).log_prob(z)
            - Independent(Normal(mean, torch.exp(0.5 * log_var)), 1).log_prob(z)
        )
        expected = torch.logsumexp(log_w, dim=0) - torch.log(torch.tensor(6.0))
    torch.testing.assert_close(bound, expected)
    torch.testing.assert_close(-objective.loss, expected)


def test_sample_draws_from_the_mixture():
    model = _model(2)
    with torch.no_grad():
        got = model.sample(7, generator=_gen(9))
        means, log_vars = model.encoder(model.prior.pseudo_inputs.clamp(0, 1))
        g = _gen(9)
        index = torch.randint(5, (7,), generator=g)
        z = means[index] + torch.exp(0.5 * log_vars[index]) * torch.randn(7, 3, generator=g)
        torch.testing.assert_close(got, torch.sigmoid(model.decode(z)))


def test_default_initialisation_and_bad_arguments():
    torch.manual_seed(0)
    prior = VampPrior(500, (1, 28, 28))
    assert prior.pseudo_inputs.shape == (500, 1, 28, 28)
    assert abs(prior.pseudo_inputs.mean().item() - 0.05) < 1e-3
    with pytest.raises(ValueError, match=r"num_components must be >= 1, got 0"):
        VampPrior(0, (4,))
    with pytest.raises(ValueError, match=r"init must have shape \(num_components, \*input_shape\)"):
        VampPrior(3, (4,), init=torch.zeros(2, 4))
    model = _model()
    with pytest.raises(ValueError, match="free_bits needs the closed-form KL"):
        model.loss(torch.rand(2, 8), free_bits=0.5)
