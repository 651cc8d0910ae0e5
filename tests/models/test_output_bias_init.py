"""`VAE(output_bias_init=...)`: the decoder starts at the training data's mean.

With the decoder's weights zeroed its output is its bias for every latent, so the
likelihood's mean of that output must be the data's mean pixel: computed here with
torch's own sigmoid, ``ContinuousBernoulli.mean`` and the identity.
"""

import pytest
import torch
from torch import nn
from torch.distributions import ContinuousBernoulli

from genlatent import VAE, MLPDecoder, MLPEncoder
from genlatent.functional.likelihood import MEAN_CLAMP
from genlatent.models.presets import vae_preset


def _model(likelihood="bernoulli", output_bias_init="mean", dtype=torch.float32):
    return VAE(
        MLPEncoder(12, 8, 3), MLPDecoder(3, 8, 12, out_shape=(3, 4)),
        likelihood=likelihood, output_bias_init=output_bias_init,
    ).to(dtype)  # fmt: skip


def _constant_output(model: VAE) -> torch.Tensor:
    with torch.no_grad():
        model.decoder.out.weight.zero_()
        return model.decode(torch.randn(2, 3, dtype=model.decoder.out.weight.dtype))[0]


@pytest.mark.parametrize(
    ("likelihood", "mean_of"),
    [
        ("bernoulli", torch.sigmoid),
        ("continuous_bernoulli", lambda logits: ContinuousBernoulli(logits=logits).mean),
        ("gaussian", lambda mean: mean),
    ],
)
def test_the_decoders_start_has_the_datas_mean(likelihood, mean_of):
    model = _model(likelihood, dtype=torch.float64)
    # grey levels away from 1/2, where torch's CB mean is an expansion
    mean = torch.rand(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean = mean * 0.4 + 0.05
    model.init_output_bias(mean)
    torch.testing.assert_close(mean_of(_constant_output(model)), mean)


def test_a_pixel_that_is_always_black_starts_at_the_clamp():
    model = _model()
    mean = torch.zeros(3, 4)
    model.init_output_bias(mean)
    expected = torch.full((3, 4), MEAN_CLAMP)
    torch.testing.assert_close(torch.sigmoid(_constant_output(model)), expected)


def test_zero_zeroes_the_bias_and_none_leaves_it():
    model = _model(output_bias_init="zero")
    model.init_output_bias(torch.full((3, 4), 0.3))
    assert torch.equal(model.decoder.out.bias, torch.zeros(12))
    untouched = _model(output_bias_init=None)
    before = untouched.decoder.out.bias.clone()
    untouched.init_output_bias(torch.full((3, 4), 0.3))
    assert torch.equal(untouched.decoder.out.bias, before)


def test_the_preset_starts_from_the_mean_by_default_and_records_it():
    model = vae_preset((1, 4, 4), latent_dim=2, hidden=(8,))
    assert model.output_bias_init == "mean"
    assert model._pretrained_config()["arguments"]["output_bias_init"] == "mean"
    assert vae_preset((1, 4, 4), output_bias_init="zero").output_bias_init == "zero"


class _OpaqueDecoder(nn.Module):
    latent_dim = 3

    def forward(self, z):
        return z


def test_output_bias_init_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match=r"output_bias_init must be one of .* got 'median'"):
        _model(output_bias_init="median")
    with pytest.raises(ValueError, match="needs a decoder with an init_output_bias"):
        VAE(MLPEncoder(3, 4, 3), _OpaqueDecoder(), output_bias_init="mean")
    with pytest.raises(ValueError, match=r"needs a likelihood in .* got 'gaussian_learned_var'"):
        _model(likelihood="gaussian_learned_var")
    with pytest.raises(ValueError, match="bias must hold out_features=12 values"):
        _model().init_output_bias(torch.full((5,), 0.5))
