"""The data of a run that is read item by item (`StreamBatches`), never stacked.

`fit` keeps its in-memory fast path (`RunData`) for tensors and `ImageDataset`s; any
other dataset, iterable or ``DataLoader`` becomes a `StreamedData`: the datasets as given,
plus the first few examples read once (the preview), which the data checks and the
run's pictures use in place of the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset
from torch.utils.data._utils.collate import default_collate

from genlatent.data.batching import to_batch
from genlatent.data.dataset import ImageDataset
from genlatent.data.streaming import StreamBatches, is_in_memory

__all__ = ["StreamedData"]

_PREVIEW = 32
"""How many examples of each set are read up front: the checks' and pictures' examples."""


def _as_dataset(data: object) -> object:
    """An in-memory kind (beside streamed data) as a map-style dataset of its rows."""
    if isinstance(data, ImageDataset):
        return TensorDataset(data.images, data.labels)
    if is_in_memory(data) and isinstance(data, (tuple, list)):
        return TensorDataset(*data)
    return data


def _preview(data: object, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first examples of ``data`` as a batch (images uint8 or floating, as stored)."""
    if isinstance(data, DataLoader):
        items = [example for batch in islice(data, 1) for example in _unbatch(batch)]
    elif isinstance(data, IterableDataset) or not hasattr(data, "__len__"):
        if not hasattr(data, "__iter__"):
            raise TypeError(
                f"{name} must be an ImageDataset, an images tensor, an (images, labels) pair, "
                f"a map-style or iterable dataset, or a DataLoader, got {type(data).__name__}"
            )
        items = list(islice(iter(data), _PREVIEW))
    else:
        items = [data[i] for i in range(min(len(data), _PREVIEW))]  # type: ignore[index]
    if not items:
        raise ValueError(f"{name} must hold at least one example, got none")
    try:
        images, labels = _split(default_collate(items))
    except (TypeError, RuntimeError, ValueError) as error:
        raise TypeError(
            f"{name} items must be images or (image, label) pairs of one shape, got "
            f"{type(items[0]).__name__}: {' '.join(str(error).split())}"
        ) from error
    return images, labels


def _split(collated: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A collated batch as images and labels (checked as the trainer's batches are)."""
    batch = to_batch(collated, None, torch.float32)  # raises on anything but images (+ labels)
    raw = collated if isinstance(collated, torch.Tensor) else collated[0]  # type: ignore[index]
    return raw, batch.labels


def _unbatch(batch: object) -> list[object]:
    """A loader's batch back into its examples (images, or ``(image, label)`` pairs)."""
    if isinstance(batch, torch.Tensor):
        return list(batch)
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return list(zip(batch[0], batch[1], strict=True))
    return list(batch[0]) if isinstance(batch, (tuple, list)) and batch else []


@dataclass(frozen=True)
class StreamedData:
    """Training and test data read item by item, with the first examples of each held.

    ``train_images``/``test_images`` and their labels are those first examples (at most
    32, stored as read: uint8 or floating); they are what `fit`'s data checks probe and
    what its pictures show. ``num_classes`` is ``len(train.classes)`` where the dataset
    names its classes (as `ImageFolder` and torchvision's datasets do), else ``None``.
    """

    train: object
    test: object | None
    train_images: torch.Tensor
    train_labels: torch.Tensor | None
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    num_classes: int | None = None

    @classmethod
    def from_user(cls, train_data: object, test_data: object = None) -> StreamedData:
        """Wrap ``train_data`` and ``test_data`` (either may also be an in-memory kind)."""
        train = _as_dataset(train_data)
        images, labels = _preview(train, "train_data")
        classes = getattr(train, "classes", None)
        num_classes = len(classes) if isinstance(classes, (list, tuple)) else None
        if test_data is None:
            return cls(train, None, images, labels, num_classes=num_classes)
        test = _as_dataset(test_data)
        test_images, test_labels = _preview(test, "test_data")
        if test_images.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"test_data examples must have the shape of train_data's "
                f"{tuple(images.shape[1:])}, got {tuple(test_images.shape[1:])}"
            )
        return cls(train, test, images, labels, test_images, test_labels, num_classes)

    @staticmethod
    def takes(train_data: object, test_data: object = None) -> bool:
        """Whether either set is of a kind the in-memory path does not hold."""
        return not is_in_memory(train_data) or (
            test_data is not None and not is_in_memory(test_data)
        )

    @property
    def example_shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. ``(3, 64, 64)``."""
        return tuple(int(n) for n in self.train_images.shape[1:])

    @property
    def shown_images(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The examples the pictures show: the test set's first, else the training set's."""
        if self.test_images is not None:
            return self.test_images, self.test_labels
        return self.train_images, self.train_labels

    def batches(
        self,
        *,
        batch_size: int,
        seed: int,
        device: torch.device,
        workers: int,
        rank: int,
        world: int,
    ) -> tuple[StreamBatches, StreamBatches | None]:
        """The training batches (shuffled per epoch from ``(seed, epoch)``) and the test
        batches (in order, at least 500 a step), each process reading its own shard."""
        common = {"seed": seed, "device": device, "workers": workers, "rank": rank, "world": world}
        train = StreamBatches(self.train, batch_size=batch_size, shuffle=True, **common)  # type: ignore[arg-type]
        if self.test is None:
            return train, None
        test = StreamBatches(self.test, batch_size=max(batch_size, 500), **common)  # type: ignore[arg-type]
        return train, test
