"""The image tokenizer: its two losses against their definitions, the start step, and
its portable weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genlatent import from_pretrained
from genlatent.models import Tokenizer, tokenizer_preset


def _model(disc_start: int = 3, **options) -> Tokenizer:
    torch.manual_seed(0)
    return tokenizer_preset(
        (1, 8, 8), hidden_channels=8, embedding_dim=4, codebook_size=16, disc_channels=8,
        disc_layers=1, disc_start=disc_start, **options,
    )  # fmt: skip


def _images() -> torch.Tensor:
    return torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_before_the_start_step_the_generator_loss_is_the_reconstruction_alone() -> None:
    model, x = _model(disc_start=3), _images()
    out = model.loss(x, group="generator", step=2)
    reconstruction = model.autoencoder(x)
    expected = (reconstruction.reconstruction - x).square().mean() + reconstruction.quantizer_loss
    torch.testing.assert_close(out.loss, expected)
    assert float(out.adversarial_loss) == 0.0
    assert float(out.adversarial_weight) == 0.0
    out.loss.backward()
    # the discriminator took no part: no gradient reached it
    assert all(p.grad is None for p in model.discriminator.parameters())


def test_from_the_start_step_the_adversarial_term_has_the_adaptive_weight() -> None:
    model, x = _model(disc_start=3, disc_weight=0.5), _images()
    out = model.loss(x, group="generator", step=3)
    # independently: the same forward, the gradients' norms at the decoder's last layer
    torch.manual_seed(0)
    again = model.autoencoder(x)
    reconstruction = (again.reconstruction - x).square().mean()
    adversarial = -model.discriminator(again.reconstruction).mean()
    last = [m for m in model.autoencoder.decoder.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))][-1].weight  # fmt: skip
    (g_rec,) = torch.autograd.grad(reconstruction, last, retain_graph=True)
    (g_adv,) = torch.autograd.grad(adversarial, last, retain_graph=True)
    weight = 0.5 * g_rec.norm() / (g_adv.norm() + 1e-4)
    torch.testing.assert_close(out.adversarial_loss, adversarial)
    torch.testing.assert_close(out.adversarial_weight, weight)
    torch.testing.assert_close(
        out.loss, reconstruction + again.quantizer_loss + weight * adversarial
    )


def test_discriminator_loss_is_the_hinge_on_detached_reconstructions() -> None:
    model, x = _model(disc_start=0), _images()
    buffers = {k: v.clone() for k, v in model.autoencoder.state_dict().items()}
    out = model.loss(x, group="discriminator", step=0)
    fake = model.autoencoder.decode(model.autoencoder.encode(x))
    expected = 0.5 * (
        F.relu(1 - model.discriminator(x)).mean() + F.relu(1 + model.discriminator(fake)).mean()
    )
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert all(p.grad is None for p in model.autoencoder.parameters())
    assert all(torch.equal(v, model.autoencoder.state_dict()[k]) for k, v in buffers.items())


def test_discriminator_group_before_its_start_and_unknown_group_are_refused() -> None:
    model, x = _model(disc_start=5), _images()
    with pytest.raises(ValueError, match=r"trains from step disc_start=5, got step=4"):
        model.loss(x, group="discriminator", step=4)
    with pytest.raises(ValueError, match=r"group must be one of \('generator', 'discriminator'\)"):
        model.loss(x, group="critic")
    groups = model.optimizer_groups()
    assert groups["discriminator"].start_step == 5
    assert groups["generator"].start_step == 0
    assert {id(p) for p in groups["generator"].parameters} == {
        id(p) for p in model.autoencoder.parameters()
    }


def test_evaluation_and_a_plain_loss_have_no_adversarial_term() -> None:
    model, x = _model(disc_start=0), _images()
    with torch.no_grad():
        out = model.eval().loss(x)
    assert float(out.adversarial_weight) == 0.0
    assert out.code_counts.sum() == 6 * 2 * 2


def test_bad_arguments_name_themselves() -> None:
    autoencoder = _model().autoencoder
    with pytest.raises(TypeError, match=r"discriminator must be an nn.Module, got int"):
        Tokenizer(autoencoder, 3)
    with pytest.raises(ValueError, match=r"disc_start must be an int >= 0, got -1"):
        Tokenizer(autoencoder, torch.nn.Identity(), disc_start=-1)
    with pytest.raises(ValueError, match=r"adversarial must be one of"):
        Tokenizer(autoencoder, torch.nn.Identity(), adversarial="wasserstein")
    with pytest.raises(ValueError, match=r"disc_layers=3 needs images of side >= 24"):
        tokenizer_preset((1, 8, 8), disc_layers=3)


def test_save_pretrained_round_trip(tmp_path) -> None:
    model, x = _model().eval(), _images()
    model.save_pretrained(tmp_path)
    copy = from_pretrained(tmp_path).eval()
    assert type(copy) is Tokenizer
    assert copy.disc_start == model.disc_start
    assert torch.equal(copy.reconstruct(x), model.reconstruct(x))
    assert torch.equal(copy.encode(x), model.encode(x))
