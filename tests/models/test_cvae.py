"""`ConditionalVAE`: the conditional ELBO by its definition, the label's role, bad labels."""

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.distributions import Normal, kl_divergence

from genlatent import ConditionalVAE, fit
from genlatent.data import load_digits
from genlatent.models.presets import conditional_vae


def _model(seed: int = 0) -> ConditionalVAE:
    torch.manual_seed(seed)
    return ConditionalVAE.mlp((1, 4, 4), num_classes=3, hidden_features=8, latent_dim=2)


def test_the_loss_is_the_negative_conditional_elbo_by_its_definition():
    model = _model()
    x = torch.rand(5, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 1, 0])
    result = model.loss(x, labels=y, generator=torch.Generator().manual_seed(3), reduction="none")
    # independent reference: torch.distributions for the KL, BCE on the decoded draw
    joined = torch.cat([x.flatten(1), F.one_hot(y, 3).float()], 1)
    mean, log_var = model.encoder(joined)
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
    z = mean + torch.exp(0.5 * log_var) * eps
    logits = model.decoder(torch.cat([z, F.one_hot(y, 3).float()], 1))
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = kl_divergence(Normal(mean, torch.exp(0.5 * log_var)), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(result.reconstruction_loss, bce)
    torch.testing.assert_close(result.kl, kl)
    torch.testing.assert_close(result.loss, bce + kl)


def test_beta_scales_only_the_kl_term():
    model, x, y = _model(), torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    one = model.loss(x, labels=y, generator=torch.Generator().manual_seed(0))
    four = model.loss(x, labels=y, beta=4.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(four.loss - one.loss, 3 * one.kl)
    torch.testing.assert_close(four.elbo_loss, one.elbo_loss)


def test_the_label_reaches_both_networks():
    model = _model()
    x, z = torch.rand(1, 1, 4, 4), torch.randn(1, 2)
    assert not torch.equal(model.decode(z, torch.tensor([0])), model.decode(z, torch.tensor([1])))
    means = [model.encode(x, torch.tensor([label]))[0] for label in (0, 2)]
    assert not torch.equal(*means)


def test_samples_and_reconstructions_are_images_of_the_asked_shape():
    model = _model()
    samples = model.sample(4, labels=torch.tensor([0, 1, 2, 2]))
    assert samples.shape == (4, 1, 4, 4)
    assert bool(((samples >= 0) & (samples <= 1)).all())
    x = torch.rand(3, 1, 4, 4)
    assert model.reconstruct(x, labels=torch.tensor([0, 1, 2])).shape == x.shape


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (torch.tensor([0, 1, 3]), ValueError, r"lie in \[0, 3\), got values in \[0, 3\]"),
        (torch.tensor([0, -1, 2]), ValueError, r"labels must lie in \[0, 3\)"),
        (torch.tensor([0, 1]), ValueError, r"labels must have shape \(3,\), got \(2,\)"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "labels must be an integer tensor"),
        ([0, 1, 2], TypeError, "labels must be an integer tensor of class indices, got list"),
    ],
)
def test_bad_labels_are_named(labels, error, message):
    with pytest.raises(error, match=message):
        _model().loss(torch.rand(3, 1, 4, 4), labels=labels)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="one-parameter likelihoods"):
        ConditionalVAE.mlp((1, 4, 4), 3, likelihood="gaussian_learned_var")
    with pytest.raises(ValueError, match="num_classes must be"):
        ConditionalVAE.mlp((1, 4, 4), 0)
    with pytest.raises(ValueError, match="needs labelled data"):
        conditional_vae((1, 4, 4), None)


def test_the_trainer_passes_labels_and_draws_a_row_per_class(tmp_path):
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    model = conditional_vae(train.image_shape, 10, latent_dim=4)
    fit(model, train, test, run_dir=tmp_path, epochs=3, batch_size=64, lr=2e-3,
        log=lambda line: None, show_progress=False, device="cpu")  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["test_loss"] < records[0]["test_loss"]
    # 10 classes x 8 samples of 8x8 digits with 2-pixel padding, the whole grid scaled 8x
    with Image.open(tmp_path / "samples.png") as picture:
        assert picture.size == ((8 * (8 + 2) + 2) * 8, (10 * (8 + 2) + 2) * 8)
