"""Tests for VAE.loss's objectives (ELBO options, IWAE) and the new likelihoods in a VAE."""

import inspect
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent import MLPDecoder, MLPEncoder
from genlatent.functional import decoder_channels, standard_normal_draws
from genlatent.losses import iwae_loss, vae_loss
from genlatent.metrics import iwae_bound
from genlatent.models.vae import VAE


def _model(likelihood="bernoulli", num_mixtures=None, seed=0):
    torch.manual_seed(seed)
    out = decoder_channels(likelihood, 12, num_mixtures=num_mixtures)
    return VAE(
        MLPEncoder(12, 16, 3),
        MLPDecoder(3, 16, out),
        likelihood=likelihood,
        num_mixtures=num_mixtures,
    )


def _data(seed, batch=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 12), generator=g).float() / 255


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_loss_declares_step_for_the_trainer():
    assert "step" in inspect.signature(VAE.loss).parameters


def test_default_loss_is_vae_loss_on_forward_with_the_same_noise():
    model, x = _model(), _data(0)
    out = model(x, generator=_gen(1))
    expected = vae_loss(x, out.decoder_output, out.mean, out.log_var)
    got = model.loss(x, generator=_gen(1))
    for field in expected._fields:
        assert torch.equal(getattr(got, field), getattr(expected, field))
    assert torch.equal(got.elbo_loss, got.loss)
    same = model.loss(x, generator=_gen(1), iwae_samples=1)
    assert torch.equal(same.loss, got.loss)


def test_options_and_step_are_passed_on():
    model, x = _model(), _data(0)
    out = model(x, generator=_gen(2))
    options = {"beta": 3.0, "free_bits": 0.1, "warmup_steps": 10}
    expected = vae_loss(x, out.decoder_output, out.mean, out.log_var, step=4, **options)
    got = model.loss(x, step=4, generator=_gen(2), **options)
    torch.testing.assert_close(got.loss, expected.loss)
    torch.testing.assert_close(got.elbo_loss, expected.elbo_loss)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), count=st.integers(2, 6), batch=st.integers(1, 4))
def test_iwae_objective_is_iwae_loss_on_successive_draws(seed, count, batch):
    model, x = _model(seed=seed % 5), _data(seed, batch)
    got = model.loss(x, iwae_samples=count, generator=_gen(seed), reduction="none")
    mean, log_var = model.encode(x)
    noise = standard_normal_draws(count, mean.shape, generator=_gen(seed))
    z = mean + torch.exp(0.5 * log_var) * noise
    output = torch.stack([model.decode(zi) for zi in z])  # one decoder call per draw
    expected = iwae_loss(x, output, z, mean, log_var, noise=noise, reduction="none")
    torch.testing.assert_close(got.loss, expected.loss)
    torch.testing.assert_close(got.elbo_loss, expected.elbo_loss)
    # the first draw is forward's noise
    torch.testing.assert_close(z[0], model(x, generator=_gen(seed)).z)


def test_iwae_objective_and_the_iwae_metric_are_one_computation():
    model, x = _model(seed=3), _data(3, 5)
    with torch.no_grad():
        objective = model.loss(x, iwae_samples=9, generator=_gen(4), reduction="none")
        bound = iwae_bound(model, x, num_samples=9, chunk_size=4, generator=_gen(4))
    torch.testing.assert_close(-objective.loss, bound)


def test_iwae_training_step_changes_parameters_and_is_at_most_the_elbo():
    model, x = _model(seed=1), _data(1, 8)
    with torch.no_grad():
        iwae = model.loss(x, iwae_samples=50, generator=_gen(0)).loss
        elbo = model.loss(x, iwae_samples=50, generator=_gen(0)).elbo_loss
    assert iwae.item() <= elbo.item() + 1e-4  # log-mean-exp >= mean of the log weights
    before = [p.detach().clone() for p in model.parameters()]
    model.loss(x, iwae_samples=5, generator=_gen(0)).loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    ("likelihood", "num_mixtures"),
    [
        ("continuous_bernoulli", None),
        ("gaussian_learned_var", None),
        ("discretized_logistic", 2),
    ],
)
def test_new_likelihoods_train_sample_and_reconstruct(likelihood, num_mixtures):
    model, x = _model(likelihood, num_mixtures), _data(5)
    out = model.loss(x, generator=_gen(0))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.sample(3, generator=_gen(1)).shape == (3, 12)
    assert model.reconstruct(x).shape == x.shape
    if likelihood != "gaussian_learned_var":
        means = model.sample(3)
        assert ((means >= 0) & (means <= 1)).all()
    iwae = model.loss(x, iwae_samples=3, generator=_gen(0))
    assert torch.isfinite(iwae.loss)


def test_learned_variance_decoder_on_images():
    torch.manual_seed(0)
    model = VAE(
        MLPEncoder(16, 8, 2),
        MLPDecoder(2, 8, 32, out_shape=(2, 4, 4)),
        likelihood="gaussian_learned_var",
    )
    x = torch.rand(3, 1, 4, 4)
    assert model(x).decoder_output.shape == (3, 2, 4, 4)
    assert model.reconstruct(x).shape == x.shape
    with torch.no_grad():
        bound = iwae_bound(model, x, num_samples=4)
    assert bound.shape == (3,)
    assert math.isfinite(bound.sum().item())


def test_bad_arguments():
    model, x = _model(), _data(0)
    with pytest.raises(ValueError, match=r"iwae_samples must be >= 1, got 0"):
        model.loss(x, iwae_samples=0)
    with pytest.raises(
        ValueError,
        match=r"beta=2.0, warmup_steps=5 applies to the ELBO \(iwae_samples=1\), not to the "
        r"IWAE objective with iwae_samples=3",
    ):
        model.loss(x, iwae_samples=3, beta=2.0, warmup_steps=5)
    with pytest.raises(ValueError, match=r"beta must be >= 0, got -1.0"):
        model.loss(x, beta=-1.0)
    with pytest.raises(ValueError, match=r"num_mixtures must be given for likelihood"):
        VAE(MLPEncoder(12, 16, 3), MLPDecoder(3, 16, 12), likelihood="discretized_logistic")
    with pytest.raises(ValueError, match=r"num_mixtures applies only to likelihood"):
        VAE(MLPEncoder(12, 16, 3), MLPDecoder(3, 16, 12), num_mixtures=3)
