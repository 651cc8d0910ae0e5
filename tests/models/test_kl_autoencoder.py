"""`KLAutoencoder`, latent diffusion's continuous first stage, alone and inside a `Tokenizer`
trained by `fit` with its two optimizers."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genlatent import ConvDecoder, ConvEncoder, PatchDiscriminator, fit
from genlatent.models import KLAutoencoder, Tokenizer
from genlatent.pretrained import module_config, module_from_config
from genlatent.train import evaluate_run


def _model(kl_weight: float = 0.5) -> KLAutoencoder:
    torch.manual_seed(0)
    return KLAutoencoder(ConvEncoder(1, 8, 6), ConvDecoder(3, 8, 1), latent_channels=3,
                         kl_weight=kl_weight)  # fmt: skip


def test_the_kl_term_is_the_closed_form_per_latent_element_and_weighted():
    model = _model(kl_weight=0.5)
    x = torch.rand(4, 1, 8, 8)
    out = model(x)
    mean, log_var = model.encoder(x).chunk(2, dim=1)
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).mean()
    torch.testing.assert_close(out.terms["kl"], expected)
    torch.testing.assert_close(out.quantizer_loss, 0.5 * expected)
    assert out.counts is None
    assert out.latents.shape == (4, 3, 2, 2)


def test_training_draws_from_the_posterior_and_eval_decodes_its_mean():
    model = _model()
    x = torch.rand(3, 1, 8, 8)
    mean, log_var = model.posterior(x)
    torch.manual_seed(5)
    drawn = model(x).latents
    torch.manual_seed(5)
    torch.testing.assert_close(drawn, mean + (0.5 * log_var).exp() * torch.randn_like(mean))
    model.eval()
    assert torch.equal(model(x).latents, mean)
    assert torch.equal(model.decode(model.encode(x)), model(x).reconstruction)


def test_sample_decodes_standard_normal_latents_of_the_data_shape():
    model = _model()
    with pytest.raises(RuntimeError, match="call the model on data first"):
        model.sample(2)
    model(torch.rand(1, 1, 8, 8))
    generator = torch.Generator().manual_seed(1)
    images = model.sample(5, generator=generator)
    z = torch.randn(5, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(images, model.decoder(z))
    # the latent shape travels with the weights
    copy = module_from_config(module_config(model))
    copy.load_state_dict(model.state_dict())
    assert copy.sample(2).shape == (2, 1, 8, 8)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="kl_weight"):
        KLAutoencoder(ConvEncoder(1, 8, 6), ConvDecoder(3, 8, 1), latent_channels=3, kl_weight=-1)
    with pytest.raises(TypeError, match=r"encoder must be an nn\.Module"):
        KLAutoencoder(None, ConvDecoder(3, 8, 1), latent_channels=3)  # type: ignore[arg-type]
    wrong = KLAutoencoder(ConvEncoder(1, 8, 5), ConvDecoder(3, 8, 1), latent_channels=3)
    with pytest.raises(ValueError, match=r"2 \* latent_channels = 6 channels.*\(2, 5, 2, 2\)"):
        wrong(torch.rand(2, 1, 8, 8))


def test_a_kl_tokenizer_trains_both_groups_with_fit_and_evaluates(tmp_path):
    torch.manual_seed(0)
    tokenizer = Tokenizer(_model(kl_weight=1e-3), PatchDiscriminator(1, channels=8, layers=1),
                          disc_start=2)  # fmt: skip
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    disc_before = {k: v.clone() for k, v in tokenizer.discriminator.state_dict().items()}
    summary = fit(tokenizer, images[:48], images[48:], run_dir=tmp_path / "run", max_steps=6,
                  batch_size=16, lr=1e-3, show_progress=False, log=lambda line: None)  # fmt: skip
    metrics = summary.last_metrics
    assert metrics["train_kl"] > 0
    assert "train_codes_used" not in metrics
    assert metrics["train_adversarial_weight"] > 0  # the game is on after step 2
    changed = [not torch.equal(disc_before[k], v)
               for k, v in tokenizer.discriminator.state_dict().items()]  # fmt: skip
    assert any(changed)
    values = evaluate_run(tmp_path / "run", test_set=_as_set(images[48:]), model=tokenizer)
    assert {"psnr", "mse"} <= set(values)  # SSIM needs images of 11x11 at least
    assert "fraction_used" not in values


def _as_set(images: torch.Tensor):
    from genlatent.data import ImageDataset

    return ImageDataset(images, torch.zeros(len(images), dtype=torch.long))
