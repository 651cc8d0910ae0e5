"""Tests of ImageDataset's validation and helpers."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genlatent.data import ImageDataset


def make(n: int = 3, c: int = 1) -> ImageDataset:
    return ImageDataset(
        torch.zeros(n, c, 4, 5, dtype=torch.uint8), torch.zeros(n, dtype=torch.int64)
    )


def test_helpers() -> None:
    data = make(3, c=3)
    assert len(data) == 3
    assert data.num_channels == 3
    assert data.image_shape == (3, 4, 5)
    assert repr(data) == "ImageDataset(name='', images=uint8(3, 3, 4, 5), labels=int64(3,))"


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().name = "x"  # type: ignore[misc]


def test_empty_dataset() -> None:
    assert len(make(0)) == 0


def test_rejects_non_tensors() -> None:
    with pytest.raises(TypeError, match=r"images must be a torch.Tensor, got list"):
        ImageDataset([1], torch.zeros(1, dtype=torch.int64))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"labels must be a torch.Tensor, got list"):
        ImageDataset(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), [0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"name must be a str, got int"):
        ImageDataset(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), torch.zeros(1).long(), 3)  # type: ignore[arg-type]


def test_rejects_dtypes() -> None:
    with pytest.raises(TypeError, match=r"images must have dtype torch.uint8, got torch.float32"):
        ImageDataset(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"labels must have dtype torch.int64, got torch.int32"):
        ImageDataset(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), torch.zeros(1, dtype=torch.int32))


def test_rejects_shapes() -> None:
    with pytest.raises(
        ValueError, match=r"images must have shape \(N, C, H, W\) \(4 dims\), got shape \(1, 2, 2\)"
    ):
        ImageDataset(torch.zeros(1, 2, 2, dtype=torch.uint8), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(
        ValueError, match=r"labels must have shape \(N,\) \(1 dim\), got shape \(1, 1\)"
    ):
        ImageDataset(
            torch.zeros(1, 1, 2, 2, dtype=torch.uint8), torch.zeros(1, 1, dtype=torch.int64)
        )
    with pytest.raises(ValueError, match=r"same number of items, got 2 images and 3 labels"):
        ImageDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))


def test_channel_last_images_are_refused_with_the_fix_named():
    with pytest.raises(
        ValueError, match=r"looks channel-last .* pass images\.permute\(0, 3, 1, 2\)"
    ):
        ImageDataset(
            torch.zeros(2, 32, 32, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64)
        )
    # the permuted images are accepted, and so are channel-first ones of any size
    fixed = torch.zeros(2, 32, 32, 3, dtype=torch.uint8).permute(0, 3, 1, 2)
    assert ImageDataset(fixed, torch.zeros(2, dtype=torch.int64)).image_shape == (3, 32, 32)
    assert ImageDataset(
        torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64)
    )
