"""The offline perceptual loss from the command line: ``genlatent train tokenizer
--perceptual-weight`` learns its feature network from a classifier of the run's own data
(seed 1, not the seed 0 of the evaluation's classifier) before the first step, keeps it
frozen, and a resumed run takes it from the checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from genlatent import fit
from genlatent.cli import main
from genlatent.losses import PerceptualLoss
from genlatent.metrics import Classifier, ClassifierFeatureMaps, train_classifier
from genlatent.models import tokenizer_preset
from genlatent.train.build import load_datasets
from genlatent.train.data_init import PERCEPTUAL_SEED, init_feature_maps
from genlatent.train.runs import load_run

RUN = ["--dataset", "digits", "--train-limit", "96", "--test-limit", "32",
       "--batch-size", "32", "--hidden-channels", "8", "--embedding-dim", "4",
       "--codebook-size", "16", "--disc-channels", "8", "--disc-layers", "1",
       "--no-progress", "--device", "cpu"]  # fmt: skip


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLATENT_DATA", str(tmp_path / "home"))


def _bodies_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_cli_learns_the_perceptual_network_from_a_classifier_of_the_runs_data(tmp_path):
    run = tmp_path / "run"
    flags = [*RUN, "--perceptual-weight", "0.5", "--max-steps", "4", "--out", str(run)]
    assert main(["train", "tokenizer", *flags]) == 0
    loaded = load_run(run, checkpoint="last")
    features = loaded.model.perceptual.features
    assert isinstance(features, ClassifierFeatureMaps)
    # the body of a classifier trained independently here on the same data with seed 1
    train_set, _ = load_datasets(loaded.config)
    expected = train_classifier(train_set, seed=PERCEPTUAL_SEED)
    assert _bodies_equal(features.body, expected.body)
    assert not _bodies_equal(features.body, train_classifier(train_set, seed=0).body)
    # frozen: the generator's optimizer never held it, so four steps left it as trained
    assert not any(p.requires_grad for p in features.parameters())
    # and the loss has the term: the steps' perceptual distance is positive
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train_perceptual_loss"] > 0
    assert json.loads((run / "config.json").read_text())["architecture"]["perceptual_weight"] == 0.5


def test_a_resumed_run_takes_the_network_from_its_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "tokenizer", *RUN, "--perceptual-weight", "1", "--max-steps", "2",
                 "--out", str(run)]) == 0  # fmt: skip
    calls = []
    monkeypatch.setattr("genlatent.train.data_init.load_or_train_classifier",
                        lambda *a, **k: calls.append(a))  # fmt: skip
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--no-progress"]) == 0
    assert calls == []  # nothing retrained on resume: the weights come with the checkpoint


def test_without_the_weight_the_preset_has_no_perceptual_loss_and_non_square_is_refused():
    assert tokenizer_preset((1, 8, 8), disc_layers=1).perceptual is None
    model = tokenizer_preset((1, 8, 8), disc_layers=1, perceptual_weight=0.25)
    assert isinstance(model.perceptual, PerceptualLoss)
    assert model.perceptual_weight == 0.25
    with pytest.raises(
        ValueError, match=r"perceptual_weight > 0 needs square images.*\(1, 8, 12\)"
    ):
        tokenizer_preset((1, 8, 12), disc_layers=1, perceptual_weight=1.0)
    with pytest.raises(ValueError, match="perceptual_weight"):
        tokenizer_preset((1, 8, 8), disc_layers=1, perceptual_weight=-1.0)


def test_fit_learns_only_waiting_networks_and_names_what_it_lacks(tmp_path):
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    labels = torch.arange(64) % 4
    given = ClassifierFeatureMaps.from_classifier(Classifier(1, 4, image_size=8))
    before = {k: v.clone() for k, v in given.state_dict().items()}
    model = torch.nn.Sequential(given)
    assert init_feature_maps(model, images, labels) == 0  # given weights are kept
    assert all(torch.equal(before[k], v) for k, v in given.state_dict().items())
    fresh = torch.nn.Sequential(ClassifierFeatureMaps(1, image_size=8))
    with pytest.raises(ValueError, match="needs labels, got train_data without labels"):
        init_feature_maps(fresh, images, None)
    with pytest.raises(ValueError, match="held in memory, got a streamed dataset"):
        init_feature_maps(fresh, images, labels, in_memory=False)
    assert init_feature_maps(fresh, images.float() / 255, labels) == 1  # float images too
    assert not fresh[0].needs_data


def test_feature_maps_of_a_classifier_are_its_feature_maps_and_shapes_are_checked():
    torch.manual_seed(0)
    classifier = Classifier(1, 10, image_size=28)
    x = torch.rand(3, 1, 28, 28)
    maps = ClassifierFeatureMaps.from_classifier(classifier)
    for ours, theirs in zip(maps(x), classifier.feature_maps(x), strict=True):
        torch.testing.assert_close(ours, theirs)
    with pytest.raises(ValueError, match=r"classifier must have the body of ClassifierFeatureMaps"):
        ClassifierFeatureMaps(1, image_size=12).load_classifier(classifier)
    with pytest.raises(TypeError, match="classifier must be a genlatent Classifier"):
        maps.load_classifier(torch.nn.Linear(2, 2))


def test_a_tokenizer_whose_discriminator_starts_at_once_passes_fits_data_check(tmp_path):
    # the data check runs the loss as training does, with autograd on: VQGAN's adaptive
    # weight takes gradients inside the loss (it failed the check with disc_start=0)
    model = tokenizer_preset((1, 8, 8), hidden_channels=8, embedding_dim=4, codebook_size=16,
                             disc_channels=8, disc_layers=1, disc_start=0)  # fmt: skip
    images = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)
    summary = fit(model, images, run_dir=tmp_path / "run", max_steps=2, batch_size=16,
                  lr=1e-3, show_progress=False, log=lambda line: None)  # fmt: skip
    assert summary.last_metrics["train_adversarial_weight"] > 0
