"""Tests for ConvEncoder, ConvDecoder and ResidualBlock."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.nn import ConvDecoder, ConvEncoder, ResidualBlock


@pytest.mark.parametrize(("channels", "side", "latent_side"), [(3, 32, 8), (1, 28, 7)])
def test_round_trip_shapes(channels, side, latent_side):
    encoder, decoder = ConvEncoder(channels, 8, 4), ConvDecoder(4, 8, channels)
    z = encoder(torch.rand(2, channels, side, side))
    assert z.shape == (2, 4, latent_side, latent_side)
    assert decoder(z).shape == (2, channels, side, side)


def test_reference_parameter_count():
    assert sum(p.numel() for p in ConvEncoder(3, 512, 16).parameters()) == 6_850_576


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 3), hidden=st.integers(1, 6))
def test_gradients_reach_every_parameter(seed, batch, hidden):
    torch.manual_seed(seed)
    encoder, decoder = ConvEncoder(2, hidden, 3), ConvDecoder(3, hidden, 2)
    decoder(encoder(torch.rand(batch, 2, 8, 8))).square().mean().backward()
    for name, p in [*encoder.named_parameters(), *decoder.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_batch_of_zero():
    assert ConvDecoder(4, 8, 3)(ConvEncoder(3, 8, 4)(torch.rand(0, 3, 16, 16))).shape == (
        0,
        3,
        16,
        16,
    )


def test_residual_block_is_identity_plus_conv():
    block = ResidualBlock(3, 3, transposed=True)
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(block(x), x + block.conv(x))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"x must have 3 channels, .* got \(2, 1, 32, 32\)"):
        ConvEncoder(3, 8, 4)(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, H, W\) \(4 dims\)"):
        ConvEncoder(3, 8, 4)(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match=r"z must have 4 channels"):
        ConvDecoder(4, 8, 3)(torch.rand(1, 5, 8, 8))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ResidualBlock(3, 2)
    with pytest.raises(ValueError, match="hidden_channels must be >= 1"):
        ConvEncoder(3, 0, 4)
