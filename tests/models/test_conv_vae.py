"""`conv_vae`: the convolutional VAE preset with the discretized logistic likelihood."""

import json
import math

import pytest
import torch

from genlatent import fit
from genlatent.models.presets import conv_vae


def test_the_decoder_gives_the_mixture_parameters_of_every_value():
    model = conv_vae(latent_dim=8, hidden_channels=16, num_mixtures=3)
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.decoder_output.shape == (2, 3 * 3 * 3, 32, 32)  # 3M per channel
    assert model.likelihood == "discretized_logistic"
    loss = model.loss(x)
    assert torch.isfinite(loss.loss)
    samples = model.sample(3)
    assert samples.shape == (3, 3, 32, 32)
    assert bool(((samples >= 0) & (samples <= 1)).all())


def test_other_image_shapes_and_bad_ones():
    grey = conv_vae((1, 28, 28), latent_dim=4, hidden_channels=8)
    assert grey.sample(2).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"H and W multiples of 4, got \(3, 30, 30\)"):
        conv_vae((3, 30, 30))


def test_it_learns_8_bit_images_below_the_uniform_8_bits_per_dimension(tmp_path):
    # two grey levels per channel: a model that learns them beats the uniform
    # distribution over 256 levels (8 bits per dimension) by far
    g = torch.Generator().manual_seed(0)
    images = (torch.randint(0, 2, (256, 3, 8, 8), generator=g) * 200 + 20).to(torch.uint8)
    torch.manual_seed(0)
    model = conv_vae((3, 8, 8), latent_dim=4, hidden_channels=16, num_mixtures=2)
    fit(model, images, images[:64], run_dir=tmp_path, epochs=10, batch_size=32, lr=3e-3,
        log=lambda line: None, show_progress=False, device="cpu")  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    bits_per_dim = records[-1]["test_loss"] / (3 * 8 * 8 * math.log(2))
    assert records[-1]["test_loss"] < records[0]["test_loss"]
    assert bits_per_dim < 6.5  # from about 9 at initialisation
