"""Tests for MLPEncoder and MLPDecoder."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from genlatent.nn import GaussianParams, MLPDecoder, MLPEncoder


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(0, 4),
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    latent=st.integers(1, 5),
)
def test_encoder_decoder_shapes_and_gradients(seed, batch, hidden, latent):
    torch.manual_seed(seed)
    encoder = MLPEncoder(12, hidden, latent)
    decoder = MLPDecoder(latent, hidden, 12, out_shape=(3, 2, 2))
    x = torch.rand(batch, 3, 2, 2)
    out = encoder(x)
    assert isinstance(out, GaussianParams)
    assert out.mean.shape == out.log_var.shape == (batch, latent)
    logits = decoder(out.mean + out.log_var)
    assert logits.shape == x.shape
    if batch:
        logits.sum().backward()
        for name, p in [*encoder.named_parameters(), *decoder.named_parameters()]:
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name


def test_flat_input_with_leading_dims():
    encoder = MLPEncoder(6, 4, 2)
    mean, _ = encoder(torch.rand(2, 3, 6))
    assert mean.shape == (2, 3, 2)
    assert MLPDecoder(2, 4, 6)(mean).shape == (2, 3, 6)


def test_reference_layer_sizes_and_default_activation():
    encoder = MLPEncoder(784, (400, 400), 200)
    decoder = MLPDecoder(200, (400, 400), 784)
    total = sum(p.numel() for m in (encoder, decoder) for p in m.parameters())
    assert total == 1_189_984
    acts = [m for m in encoder.body if not isinstance(m, nn.Linear)]
    assert all(isinstance(a, nn.LeakyReLU) and a.negative_slope == 0.2 for a in acts)


def test_custom_activation_module_is_copied_per_layer():
    encoder = MLPEncoder(4, (3, 3), 2, activation=nn.PReLU())
    prelus = [m for m in encoder.body if isinstance(m, nn.PReLU)]
    assert len(prelus) == 2
    assert prelus[0].weight is not prelus[1].weight
    assert isinstance(MLPDecoder(2, 3, 4, activation=nn.Tanh).body[1], nn.Tanh)


def test_dtype_follows_constructor():
    encoder = MLPEncoder(4, 3, 2, dtype=torch.float64)
    assert encoder(torch.rand(1, 4, dtype=torch.float64)).mean.dtype == torch.float64


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: MLPEncoder(0, 3, 2), ValueError, "in_features must be >= 1, got 0"),
        (lambda: MLPEncoder(4, 3, 2.0), TypeError, "latent_dim must be an int, got float"),
        (lambda: MLPEncoder(4, "3", 2), TypeError, "hidden_features must be an int or a seq"),
        (lambda: MLPEncoder(4, (3, -1), 2), ValueError, "hidden_features must be >= 1, got -1"),
        (
            lambda: MLPDecoder(2, 3, 10, out_shape=(3, 3)),
            ValueError,
            r"out_shape must .* out_features=10",
        ),
        (lambda: MLPEncoder(4, 3, 2, activation=3), TypeError, "activation must be an nn.M"),
        (
            lambda: MLPEncoder(4, 3, 2, activation=lambda: 3),
            TypeError,
            "a callable returning int",
        ),
    ],
)
def test_bad_constructor_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_forward_inputs():
    encoder, decoder = MLPEncoder(6, 4, 2), MLPDecoder(2, 4, 6)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 6\) .* got \(2, 5\)"):
        encoder(torch.rand(2, 5))
    with pytest.raises(TypeError, match=r"x must have a floating-point dtype, got torch\.uint8"):
        encoder(torch.zeros(2, 6, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"z must have shape \(\*, 2\), got \(2, 3\)"):
        decoder(torch.rand(2, 3))
