"""The names renamed in 0.2 still work for one release: each warns and forwards to its new
name (the table of docs/guides/migration.md)."""

from __future__ import annotations

import pytest
import torch

from genlatent import (
    VAE,
    VQVAE,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    VectorQuantizer,
    vae_loss,
    vqvae_loss,
)
from genlatent.metrics import VAEEvaluation


def _evaluation() -> VAEEvaluation:
    return VAEEvaluation(
        negative_elbo=3.0, reconstruction_loss=2.0, kl=1.0, bits_per_dim=0.1, iwae_nll=None,
        iwae_bits_per_dim=None, iwae_samples=0, num_examples=4, values_per_example=64,
    )  # fmt: skip


def test_renamed_fields_warn_and_return_the_new_field() -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 1, 8, 8)
    vae = VAE(MLPEncoder(64, 16, 2), MLPDecoder(2, 16, 64, out_shape=(1, 8, 8)))
    out = vae(x)
    elbo = vae_loss(x, out.decoder_output, out.mean, out.log_var)
    vq = vqvae_loss(x, torch.zeros_like(x), torch.tensor(0.5))
    cases = [
        (out, "logits", "decoder_output"),
        (elbo, "reconstruction", "reconstruction_loss"),
        (vq, "reconstruction", "reconstruction_loss"),
        (vq, "quantizer", "quantizer_loss"),
        (_evaluation(), "reconstruction", "reconstruction_loss"),
    ]
    for owner, old, new in cases:
        with pytest.warns(DeprecationWarning, match=rf"\.{old} is deprecated .* use \w+\.{new}$"):
            value = getattr(owner, old)
        assert value is getattr(owner, new)
    assert len(out) == 4, "an alias is not a field: the tuple keeps its length"


def test_renamed_methods_warn_and_call_the_new_method() -> None:
    torch.manual_seed(0)
    quantizer = VectorQuantizer(8, 4)
    indices = torch.tensor([[0, 3], [7, 1]])
    with pytest.warns(DeprecationWarning, match=r"VectorQuantizer\.lookup is deprecated"):
        old = quantizer.lookup(indices)
    torch.testing.assert_close(old, quantizer.decode(indices))
    torch.testing.assert_close(old[0, :, 1], quantizer.codebook[3])  # channels first: a row
    model = VQVAE(ConvEncoder(1, 8, 4), VectorQuantizer(8, 4), ConvDecoder(4, 8, 1)).eval()
    grid = torch.zeros(2, 2, 2, dtype=torch.long)
    with pytest.warns(DeprecationWarning, match=r"VQVAE\.decode_indices is deprecated"):
        images = model.decode_indices(grid)
    torch.testing.assert_close(images, model.decode(grid))
