"""Gather whatever a user hands the trainer into one images tensor and its labels."""

from __future__ import annotations

from typing import Any

import torch

from genlatent.data.dataset import ImageDataset

__all__ = ["as_tensors"]


def _image(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"{name} must hold image tensors, got {type(value).__name__}"
            ) from error
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(
            f"{name} images must be uint8 or floating (or integer codes), got {value.dtype}"
        )
    return value


def _labels(value: object, count: int, name: str) -> torch.Tensor:
    labels = torch.as_tensor(value)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.shape != (count,):
        raise ValueError(
            f"{name} labels must be integers of shape ({count},), "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    return labels.long()


def _from_dataset(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stack the items of a map-style dataset of images or ``(image, label)`` pairs."""
    count = len(data)
    if count == 0:
        raise ValueError(f"{name} must hold at least one example, got an empty dataset")
    items = [data[i] for i in range(count)]
    if isinstance(items[0], (tuple, list)):
        if len(items[0]) < 1:
            raise ValueError(f"{name} items must be images or (image, label) pairs, got ()")
        images = torch.stack([_image(item[0], name) for item in items])
        if len(items[0]) == 1:
            return images, None
        labels = _labels([int(item[1]) for item in items], count, name)
        return images, labels
    return torch.stack([_image(item, name) for item in items]), None


def as_tensors(data: object, *, name: str = "data") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images $(N, *)$ (uint8 or floating) and int64 labels $(N,)$ or ``None`` from ``data``.

    ``data`` may be an `ImageDataset`, an images tensor, an ``(images, labels)`` pair of
    tensors, or any map-style dataset (``len`` and integer indexing, such as a
    ``torch.utils.data.Dataset``) whose items are images or ``(image, label)`` pairs; such
    a dataset is read once, into memory. uint8 images are read as $[0, 255]$ and scaled to
    $[0, 1]$ by the batcher; floating images are used as they are.

    Raises:
        TypeError: if ``data`` is none of those, or holds something other than images.
        ValueError: if it is empty, or the labels do not match the images.

    Example:
        >>> import torch
        >>> images, labels = as_tensors((torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 1])))
        >>> images.shape, labels
        (torch.Size([3, 1, 2, 2]), tensor([0, 1, 1]))
    """
    if isinstance(data, ImageDataset):
        return data.images, data.labels
    if isinstance(data, torch.Tensor):
        images, labels = _image(data, name), None
    elif isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        images = _image(data[0], name)
        labels = _labels(data[1], images.shape[0], name)
    elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        images, labels = _from_dataset(data, name)
    else:
        raise TypeError(
            f"{name} must be an ImageDataset, an images tensor, an (images, labels) pair or a "
            f"map-style dataset, got {type(data).__name__}"
        )
    if images.ndim < 2 or images.shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one example of shape (N, *), got {tuple(images.shape)}"
        )
    return images, labels
