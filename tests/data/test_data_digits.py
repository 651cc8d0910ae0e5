"""scikit-learn's digits as an ImageDataset."""

from __future__ import annotations

import sys

import pytest
import torch

from genlatent.data import load_digits
from genlatent.data.digits import DIGITS_TEST_SIZE


def test_splits() -> None:
    train, test, full = load_digits("train"), load_digits("test"), load_digits("all")
    assert (len(train), len(test), len(full)) == (1500, 297, 1797)
    assert DIGITS_TEST_SIZE == 297
    assert train.images.shape == (1500, 1, 8, 8)
    assert train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64
    assert torch.equal(torch.cat([train.images, test.images]), full.images)
    assert torch.equal(torch.cat([train.labels, test.labels]), full.labels)
    assert set(full.labels.tolist()) == set(range(10))


def test_scaling_matches_sklearn() -> None:
    from sklearn.datasets import load_digits as sklearn_load_digits

    source = sklearn_load_digits()
    full = load_digits("all")
    expected = [[round(v * 255 / 16) for v in row] for row in source.images[0].tolist()]
    assert full.images[0, 0].tolist() == expected
    assert int(full.images.max()) == 255
    assert int(full.images.min()) == 0
    assert full.labels.tolist() == source.target.tolist()


def test_deterministic() -> None:
    assert torch.equal(load_digits("test").images, load_digits("test").images)


def test_bad_split() -> None:
    with pytest.raises(
        ValueError, match=r"split must be one of \('train', 'test', 'all'\), got 'x'"
    ):
        load_digits("x")


def test_missing_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install genlatent\[demo\]"):
        load_digits()
