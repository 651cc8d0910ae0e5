"""Fast in-memory batching, and a bridge that lets trainers take any user data.

A per-item ``torch.utils.data.DataLoader`` calls Python once per image and collates;
:class:`TensorBatches` keeps the whole uint8 dataset as one tensor and makes each batch
with one ``index_select`` and one conversion to float.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, cast

import torch

from genlatent._validation import check_positive_int, check_tensor
from genlatent.data.dataset import ImageDataset

__all__ = ["Batch", "TensorBatches", "as_batches", "iter_from", "to_batch"]


class Batch(NamedTuple):
    """One batch: float ``images`` (B, C, H, W) in [0, 1] and ``labels`` (B,) or ``None``."""

    images: torch.Tensor
    labels: torch.Tensor | None


def _to_float(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 pixels to ``dtype`` in [0, 1]; floats cast; other integers (codes) kept as they are."""
    if images.dtype == torch.uint8:
        return images.to(dtype).div_(255)
    if images.is_floating_point():
        return images.to(dtype)
    return images


class TensorBatches:
    """Mini-batches drawn from tensors held in memory (optionally on an accelerator).

    Each epoch (each ``iter()``) with ``shuffle=True`` draws a fresh permutation
    ``torch.randperm(N, generator=generator)`` and yields its consecutive chunks; with
    ``shuffle=False`` batches follow the data's order. uint8 images are scaled to
    ``[0, 1]`` by ``x / 255``; floating images are only cast to ``dtype``. The data moves
    to ``device`` once, at construction; only the batch is converted.

    Args:
        data: an :class:`ImageDataset`, or an images tensor ``(N, C, H, W)`` or any
            ``(N, *)`` (uint8 or floating).
        labels: labels ``(N,)`` when ``data`` is a tensor; taken from the dataset otherwise.
        batch_size: images per batch; the last batch is smaller unless ``drop_last``.
        shuffle: draw a new permutation every epoch.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        generator: the ``torch.Generator`` the permutation is drawn from.
        device: where the data lives and batches are made; defaults to where it is.
        dtype: the floating dtype of the yielded images.

    Raises:
        TypeError: on a wrong argument type, non-floating ``dtype``, or labels given
            alongside an :class:`ImageDataset`.
        ValueError: on a bad shape, mismatched counts, or ``batch_size < 1``.

    Shape:
        - images: ``(N, C, H, W)`` in, batches ``(B, C, H, W)`` out.
        - labels: ``(N,)`` in, ``(B,)`` out.

    Example:
        >>> import torch
        >>> from genlatent.data import TensorBatches
        >>> images = torch.full((5, 1, 2, 2), 255, dtype=torch.uint8)
        >>> batches = TensorBatches(images, torch.arange(5), batch_size=2)
        >>> len(batches)
        3
        >>> [tuple(b.images.shape) for b in batches]
        [(2, 1, 2, 2), (2, 1, 2, 2), (1, 1, 2, 2)]
        >>> next(iter(batches)).labels
        tensor([0, 1])
        >>> float(next(iter(batches)).images.max())
        1.0
    """

    def __init__(
        self,
        data: ImageDataset | torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if isinstance(data, ImageDataset):
            if labels is not None:
                raise TypeError("labels must be None when data is an ImageDataset")
            images, labels = data.images, data.labels
        else:
            images = check_tensor("data", data)
        if images.ndim < 2:
            raise ValueError(
                f"images must have shape (N, *) such as (N, C, H, W), got shape "
                f"{tuple(images.shape)}"
            )
        if images.dtype == torch.bool or images.is_complex():
            raise TypeError(
                f"images must be uint8 or floating (or integer codes), got {images.dtype}"
            )
        if labels is not None:
            labels = check_tensor("labels", labels)
            if labels.shape[:1] != images.shape[:1]:
                raise ValueError(
                    f"labels must have shape (N,) with N={images.shape[0]} like the images, "
                    f"got shape {tuple(labels.shape)}"
                )
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.dtype = dtype
        self.images = images if device is None else images.to(device)
        self.labels = labels if device is None or labels is None else labels.to(device)

    @property
    def num_samples(self) -> int:
        """The number of images ``N``."""
        return int(self.images.shape[0])

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_from(0)

    def iter_from(self, position: int) -> Iterator[Batch]:
        """This epoch's batches from batch ``position`` (0 for the first) on: the epoch's
        permutation is drawn as `__iter__` draws it, the batches before ``position`` are
        never made (a resume in the middle of an epoch)."""
        n, b = self.num_samples, self.batch_size
        stop = (n // b) * b if self.drop_last else n
        first = position * b
        if self.shuffle:
            gen_device = self.generator.device if self.generator is not None else "cpu"
            order = torch.randperm(n, generator=self.generator, device=gen_device)
            order = order.to(self.images.device)
            for start in range(first, stop, b):
                index = order[start : start + b]
                labels = None if self.labels is None else self.labels.index_select(0, index)
                yield Batch(_to_float(self.images.index_select(0, index), self.dtype), labels)
        else:
            for start in range(first, stop, b):
                labels = None if self.labels is None else self.labels[start : start + b]
                yield Batch(_to_float(self.images[start : start + b], self.dtype), labels)


def iter_from(batches: Iterable[Any], position: int) -> Iterator[Any]:
    """An iterator over one pass of ``batches`` from batch ``position`` (0: the first) on.

    Batches with an ``iter_from(position)`` method (`TensorBatches`, `StreamBatches`,
    `DynamicBinarization` over them) skip the first ``position`` batches without making
    or reading them; any other iterable is read and the first ``position`` are dropped.

    Example:
        >>> list(iter_from([10, 11, 12], 2)), len(list(iter_from(TensorBatches(
        ...     torch.zeros(5, 1), batch_size=2), 1)))
        ([12], 2)
    """
    method = getattr(batches, "iter_from", None)
    if callable(method):
        return cast(Iterator[Any], method(position))
    return itertools.islice(iter(batches), position, None)


def to_batch(item: object, device: torch.device | str | None, dtype: torch.dtype) -> Batch:
    """One user batch (an images tensor, or an ``(images,)`` or ``(images, labels)``
    pair) as a `Batch`: moved to ``device`` first (uint8 moves 4x fewer bytes than
    float), then scaled or cast (see `TensorBatches`).

    Raises:
        TypeError: if ``item`` is none of those kinds.

    Example:
        >>> batch = to_batch((torch.full((2, 1, 1, 1), 255, dtype=torch.uint8),), None,
        ...                  torch.float32)
        >>> batch.images.flatten().tolist(), batch.labels
        ([1.0, 1.0], None)
    """
    labels: object = None
    if isinstance(item, torch.Tensor):
        images: object = item
    elif isinstance(item, (tuple, list)) and 1 <= len(item) <= 2:
        images = item[0]
        labels = item[1] if len(item) == 2 else None
    else:
        raise TypeError(
            "each batch must be an images tensor or an (images, labels) pair, "
            f"got {type(item).__name__}"
        )
    images = check_tensor("batch images", images)
    if labels is not None:
        labels = check_tensor("batch labels", labels)
    if device is not None:
        images = images.to(device, non_blocking=True)
        labels = None if labels is None else labels.to(device, non_blocking=True)
    return Batch(_to_float(images, dtype), labels)


class _UserBatches:
    """Re-iterable view of a user iterable that normalises each item to a :class:`Batch`."""

    def __init__(
        self,
        source: Iterable[object],
        device: torch.device | str | None,
        dtype: torch.dtype,
    ) -> None:
        self.source = source
        self.device = device
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Batch]:
        for item in self.source:
            yield to_batch(item, self.device, self.dtype)


def as_batches(
    data: ImageDataset | torch.Tensor | TensorBatches | Iterable[object],
    batch_size: int | None = None,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Iterable[Batch]:
    """Turn whatever a user passes a trainer into an iterable of :class:`Batch`.

    - An :class:`ImageDataset` or an images tensor becomes a :class:`TensorBatches`
      with the given options (``batch_size`` is then required).
    - A :class:`TensorBatches` is returned unchanged.
    - Any other iterable, such as a ``DataLoader``, is wrapped: each item may be an
      images tensor or an ``(images, labels)`` pair; uint8 images are scaled to
      ``[0, 1]``, tensors are moved to ``device`` if given. It can be iterated once per
      epoch, as often as the source can, and has a ``len`` where the source has one.

    Raises:
        TypeError: if ``data`` is not iterable, or a user batch has the wrong type
            (raised when that batch is reached).
        ValueError: if ``batch_size`` is missing for a dataset or tensor.

    Example:
        >>> import torch
        >>> from genlatent.data import as_batches
        >>> loader = [(torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.tensor([4, 2]))]
        >>> batch = next(iter(as_batches(loader)))
        >>> batch.images.dtype, batch.labels
        (torch.float32, tensor([4, 2]))
    """
    if isinstance(data, TensorBatches):
        return data
    if isinstance(data, (ImageDataset, torch.Tensor)):
        if batch_size is None:
            raise ValueError(f"batch_size is required to batch a {type(data).__name__}, got None")
        return TensorBatches(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=generator,
            device=device,
            dtype=dtype,
        )
    if not isinstance(data, Iterable):
        raise TypeError(
            "data must be an ImageDataset, a tensor, a TensorBatches or an iterable of "
            f"batches, got {type(data).__name__}"
        )
    return _UserBatches(data, device, dtype)
