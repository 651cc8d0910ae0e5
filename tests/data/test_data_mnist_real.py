"""Integration tests on the real MNIST files (see the ``mnist_dir`` fixture)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
import torch

from genlatent.data import ImageDataset, load_mnist

# SHA-256 of the four decompressed official IDX files, as published by several public
# projects that pin MNIST (e.g. scripts that verify downloads from the ossci-datasets and
# cvdf-datasets mirrors). Our copy is re-gzipped, so only the decompressed bytes match.
OFFICIAL_IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@pytest.fixture(scope="module")
def mnist_train(mnist_dir: Path) -> ImageDataset:
    return load_mnist(mnist_dir, split="train")


@pytest.fixture(scope="module")
def mnist_test(mnist_dir: Path) -> ImageDataset:
    return load_mnist(mnist_dir, split="test")


def test_train_split_shape_and_labels(mnist_train: ImageDataset) -> None:
    assert len(mnist_train) == 60000
    assert mnist_train.images.shape == (60000, 1, 28, 28)
    assert mnist_train.images.dtype == torch.uint8
    assert mnist_train.labels.dtype == torch.int64
    assert int(mnist_train.labels.min()) == 0
    assert int(mnist_train.labels.max()) == 9
    assert mnist_train.name == "mnist-train"


def test_test_split_shape_and_labels(mnist_test: ImageDataset) -> None:
    assert len(mnist_test) == 10000
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert int(mnist_test.labels.min()) == 0
    assert int(mnist_test.labels.max()) == 9


def test_known_statistics(mnist_train: ImageDataset, mnist_test: ImageDataset) -> None:
    # Computed once from the official files; any change in decoding or order shows here.
    assert int(mnist_train.labels.sum()) == 267236
    assert int(mnist_test.labels.sum()) == 44434
    assert int(mnist_train.images.sum(dtype=torch.int64)) == 1567298545
    assert int(mnist_test.images.sum(dtype=torch.int64)) == 264923200
    counts = torch.bincount(mnist_train.labels).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # The first training digits of MNIST are 5, 0, 4, 1, 9.
    assert mnist_train.labels[:5].tolist() == [5, 0, 4, 1, 9]


@pytest.mark.parametrize("stem", sorted(OFFICIAL_IDX_SHA256))
def test_files_are_the_official_ones(mnist_dir: Path, stem: str) -> None:
    data = gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes())
    assert hashlib.sha256(data).hexdigest() == OFFICIAL_IDX_SHA256[stem]


def test_torchvision_layout_and_raw_files(mnist_dir: Path, tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / stem).write_bytes(gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes()))
    from_raw = load_mnist(tmp_path, split="test")
    from_gz = load_mnist(mnist_dir, split="test")
    assert torch.equal(from_raw.images, from_gz.images)
    assert torch.equal(from_raw.labels, from_gz.labels)
