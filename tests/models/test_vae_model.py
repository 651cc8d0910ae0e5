"""Tests for the VAE composition."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent import VAE, MLPDecoder, MLPEncoder, vae_loss


def _model(latent=3, likelihood="bernoulli"):
    return VAE(
        MLPEncoder(12, 8, latent),
        MLPDecoder(latent, 8, 12, out_shape=(3, 4)),
        likelihood=likelihood,
    )


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(0, 5))
def test_forward_fields_and_loss(seed, batch):
    torch.manual_seed(seed)
    model = _model()
    x = torch.rand(batch, 3, 4)
    out = model(x, generator=torch.Generator().manual_seed(seed))
    assert out.decoder_output.shape == x.shape
    assert out.mean.shape == out.log_var.shape == out.z.shape == (batch, 3)
    again = model(x, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(out.z, again.z)
    expected = vae_loss(x, out.decoder_output, out.mean, out.log_var, reduction="sum")
    got = model.loss(x, reduction="sum", generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(got.loss, expected.loss)


def test_train_step_changes_every_parameter_and_eval_changes_nothing():
    torch.manual_seed(0)
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.loss(torch.rand(4, 3, 4)).loss.backward()
    optimizer.step()
    for name, value in model.state_dict().items():
        assert not torch.equal(value, before[name]), name
    model.eval()
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.loss(torch.rand(4, 3, 4))
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshot[name]), name


def test_sample_and_reconstruct_are_probabilities():
    model = _model()
    samples = model.sample(7, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (7, 3, 4)
    assert ((samples >= 0) & (samples <= 1)).all()
    x = torch.rand(2, 3, 4)
    rec = model.reconstruct(x)
    assert rec.shape == (2, 3, 4)
    assert ((rec >= 0) & (rec <= 1)).all()
    # deterministic: the decoded posterior mean, not a sample
    torch.testing.assert_close(rec, torch.sigmoid(model.decode(model.encode(x)[0])))
    torch.testing.assert_close(rec, model.reconstruct(x))


def test_sample_follows_model_dtype():
    model = _model().double()
    assert model.sample(2).dtype == torch.float64


def test_gaussian_likelihood_returns_means():
    model = _model(likelihood="gaussian")
    samples = model.sample(3, generator=torch.Generator().manual_seed(0))
    z = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples, model.decode(z))


def test_bad_arguments():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        _model(likelihood="laplace")
    with pytest.raises(ValueError, match="latent_dim must be given"):
        VAE(MLPEncoder(4, 3, 2), torch.nn.Linear(2, 4))
    with pytest.raises(ValueError, match="num_samples must be >= 1, got 0"):
        _model().sample(0)


def test_a_nan_pixel_is_reported_as_x():
    from genlatent import mnist_vae, set_validate_args
    from genlatent._validation import get_validate_args

    x = torch.rand(3, 1, 28, 28)
    x[1, 0, 5, 5] = float("nan")
    before = get_validate_args()
    set_validate_args(True)
    try:
        with pytest.raises(
            ValueError, match=r"^x must be finite \(no NaN or infinity\), got 1 non"
        ):
            mnist_vae().loss(x)
    finally:
        set_validate_args(before)
