"""The scoring classifier: accuracy on real MNIST, class consistency, the weights cache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from genlatent.data import ImageDataset, load_mnist
from genlatent.metrics import classifier as classifier_module
from genlatent.metrics.classifier import (
    Classifier,
    class_consistency,
    load_or_train_classifier,
    train_classifier,
)
from genlatent.metrics.frechet import frechet_distance
from genlatent.train.checkpoint import CheckpointError


def _toy(seed: int = 0, num: int = 64, size: int = 12) -> ImageDataset:
    """Two classes told apart by brightness: a few steps learn them."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num) % 2
    noise = torch.randint(0, 60, (num, 1, size, size), generator=g)
    images = (noise + 180 * labels.view(-1, 1, 1, 1)).to(torch.uint8)
    return ImageDataset(images, labels, name="toy")


# ------------------------------------------------------------------------ real MNIST


@pytest.fixture(scope="module")
def mnist_classifier(mnist_dir: Path) -> tuple[Classifier, ImageDataset]:
    """Trained once for this module: 1 epoch over 20,000 training images (a few seconds)."""
    train = load_mnist(mnist_dir, split="train")
    subset = ImageDataset(train.images[:20_000], train.labels[:20_000], name="mnist-20k")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        classifier = train_classifier(subset, epochs=1, batch_size=32, seed=0)
    finally:
        torch.set_num_threads(threads)
    return classifier, load_mnist(mnist_dir, split="test")


def test_mnist_accuracy_and_class_consistency(mnist_classifier):
    classifier, test = mnist_classifier
    images, labels = test.images[:2000], test.labels[:2000]
    accuracy = class_consistency(classifier, images, labels)
    assert accuracy >= 0.95
    # reference: the predictions counted by hand, on images scaled by hand
    predicted = classifier.predict(images.float() / 255)
    assert accuracy == pytest.approx((predicted == labels).double().mean().item(), abs=1e-12)
    # asking for the wrong class: a consistent classifier almost never agrees
    assert class_consistency(classifier, images, (labels + 1) % 10) < 0.05


def test_mnist_features_separate_real_from_noise(mnist_classifier):
    classifier, test = mnist_classifier
    with torch.no_grad():
        half_a = classifier.features(test.images[:1000].float() / 255)
        half_b = classifier.features(test.images[1000:2000].float() / 255)
        noise = classifier.features(
            torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        )
    assert half_a.shape == (1000, classifier.hidden_features)
    same = frechet_distance(half_a, half_b)
    different = frechet_distance(half_a, noise)
    assert same < 0.05 * different


# ------------------------------------------------------------------------ training


def test_training_is_reproducible_and_leaves_the_global_rng_alone():
    data = _toy()
    state = torch.get_rng_state()
    first = train_classifier(data, epochs=1, batch_size=16, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)  # the global seed plays no part
    second = train_classifier(data, epochs=1, batch_size=16, seed=3)
    other = train_classifier(data, epochs=1, batch_size=16, seed=4)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    assert any(
        not torch.equal(value, other.state_dict()[name])
        for name, value in first.state_dict().items()
    )
    assert not first.training
    assert first.num_classes == 2


def test_learns_the_toy_classes():
    classifier = train_classifier(_toy(), epochs=5, batch_size=16, seed=0)
    held_out = _toy(seed=1)
    assert class_consistency(classifier, held_out.images, held_out.labels) == 1.0


# ------------------------------------------------------------------------ cache


def test_cache_trains_once_then_loads(tmp_path, monkeypatch):
    data = _toy()
    trained = load_or_train_classifier(data, tmp_path, epochs=1)
    files = list(tmp_path.glob("classifier-*.pt"))
    assert len(files) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("the cached weights should have been loaded")

    monkeypatch.setattr(classifier_module, "train_classifier", refuse)
    loaded = load_or_train_classifier(data, tmp_path, epochs=1)
    assert not loaded.training
    for name, value in trained.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    # another dataset (one pixel changed) or another recipe is another file
    images = data.images.clone()
    images[0, 0, 0, 0] += 1
    monkeypatch.undo()
    load_or_train_classifier(ImageDataset(images, data.labels), tmp_path, epochs=1)
    load_or_train_classifier(data, tmp_path, epochs=2)
    assert len(list(tmp_path.glob("classifier-*.pt"))) == 3


def test_training_and_loading_leave_the_global_random_state_alone(tmp_path):
    # a run that needs a classifier (fit's perceptual features, eval's distances) must
    # draw the same numbers afterwards whether the classifier was trained or cached
    data = _toy()
    draws = []
    for _ in range(2):  # the first call trains and saves, the second loads
        torch.manual_seed(123)
        load_or_train_classifier(data, tmp_path, epochs=1)
        draws.append(torch.rand(4))
    torch.manual_seed(123)
    assert torch.equal(draws[0], torch.rand(4))
    assert torch.equal(draws[1], draws[0])


def test_corrupt_cache_file_is_an_error_naming_it(tmp_path):
    data = _toy()
    load_or_train_classifier(data, tmp_path, epochs=1)
    (path,) = tmp_path.glob("classifier-*.pt")
    path.write_bytes(path.read_bytes()[:200])  # a write cut short
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {path} is truncated")):
        load_or_train_classifier(data, tmp_path, epochs=1)


# ------------------------------------------------------------------------ errors


def test_class_consistency_reference_and_uint8():
    classifier = Classifier(image_size=12).eval()
    images = torch.randint(0, 256, (50, 1, 12, 12), dtype=torch.uint8)
    labels = torch.randint(10, (50,), generator=torch.Generator().manual_seed(0))
    expected = (classifier.predict(images.float() / 255) == labels).double().mean().item()
    assert class_consistency(classifier, images, labels, batch_size=7) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("images", "labels", "exception", "match"),
    [
        (torch.rand(3, 1, 12, 12), torch.zeros(2, dtype=torch.long), ValueError,
         r"labels must have shape \(N,\) with N = images.shape\[0\], got images \(3, 1, 12, 12\) "
         r"and labels \(2,\)"),
        (torch.rand(0, 1, 12, 12), torch.zeros(0, dtype=torch.long), ValueError,
         "images must hold at least one image, got 0"),
        (torch.rand(2, 1, 12, 12), torch.zeros(2), TypeError,
         "labels must have an integer dtype, got torch.float32"),
        (torch.zeros(2, 1, 12, 12, dtype=torch.int32), torch.zeros(2, dtype=torch.long),
         TypeError, "images must be uint8 or floating-point images, got torch.int32"),
        (torch.rand(2, 3, 12, 12), torch.zeros(2, dtype=torch.long), ValueError,
         r"x must have shape \(B, 1, 12, 12\), got \(2, 3, 12, 12\)"),
    ],
)  # fmt: skip
def test_class_consistency_errors(images, labels, exception, match):
    with pytest.raises(exception, match=match):
        class_consistency(Classifier(image_size=12), images, labels)


def test_classifier_and_training_errors():
    with pytest.raises(ValueError, match="image_size must be >= 1, got 0"):
        Classifier(image_size=0)
    # sizes the conv-pool stages cannot take are resized to the next one they can
    for size, working in ((8, 12), (30, 32), (28, 28)):
        classifier = Classifier(image_size=size)
        assert classifier.working_size == working
        assert classifier.features(torch.rand(2, 1, size, size)).shape == (2, 128)
    with pytest.raises(TypeError, match=r"x must have a floating-point dtype .*got torch.uint8"):
        Classifier()(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match="dataset must be an ImageDataset, got Tensor"):
        train_classifier(torch.zeros(2, 1, 12, 12))
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        train_classifier(_toy(), epochs=0)
    with pytest.raises(TypeError, match="seed must be an int, got float"):
        train_classifier(_toy(), seed=1.0)
    wide = ImageDataset(
        torch.zeros(2, 1, 12, 16, dtype=torch.uint8), torch.zeros(2, dtype=torch.long)
    )
    with pytest.raises(ValueError, match="dataset images must be square, got 12x16"):
        train_classifier(wide)
    empty = ImageDataset(
        torch.zeros(0, 1, 12, 12, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    )
    with pytest.raises(ValueError, match="dataset must hold at least one image, got 0"):
        train_classifier(empty)
    with pytest.raises(TypeError, match="dataset must be an ImageDataset, got list"):
        load_or_train_classifier([], "unused")
