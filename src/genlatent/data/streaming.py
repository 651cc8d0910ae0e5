"""Streamed batches: a map-style or iterable dataset, or a user's ``DataLoader``, read
item by item and never stacked.

The in-memory path (`TensorBatches`) holds a whole uint8 dataset as one tensor; that
stops where the data outgrows memory. `StreamBatches` reads only the items each step
uses, through PyTorch's ``DataLoader`` (worker processes, pinned memory on CUDA), and
under ``torchrun`` each process reads its own shard:

- a map-style dataset through `EpochSampler`: a permutation drawn from ``(seed, epoch)``
  (so the order of any epoch is known again on resume, nothing to save), split into
  ``world`` interleaved shards padded to equal length (as ``DistributedSampler`` pads), so
  every process takes the same number of steps and no last batch is empty;
- an ``IterableDataset`` through `ShardedIterable`: item ``i`` of the stream goes to the
  one (process, worker) pair with ``i mod (world * workers)`` as its slot; the processes
  stop together at the first step where one of them has run out;
- a ``DataLoader`` the user built is used as it is (under ``torchrun`` give it a
  ``DistributedSampler``): each process iterates its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler, get_worker_info

from genlatent._validation import check_positive_int
from genlatent.data.batching import Batch, to_batch
from genlatent.data.dataset import ImageDataset

__all__ = ["EpochSampler", "ShardedIterable", "StreamBatches", "is_in_memory"]


def is_in_memory(data: object) -> bool:
    """Whether ``data`` is a kind the in-memory path holds as tensors: an `ImageDataset`,
    an images tensor, or an ``(images, labels)`` pair of tensors.

    Example:
        >>> is_in_memory(torch.zeros(2, 1, 4, 4)), is_in_memory([torch.zeros(1, 4, 4)] * 2)
        (True, False)
    """
    if isinstance(data, (ImageDataset, torch.Tensor)):
        return True
    return (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(part, torch.Tensor) for part in data)
        and data[0].ndim >= 2
        and data[1].ndim <= 1  # labels: a list of two images is a dataset of two
    )


class EpochSampler(Sampler[int]):
    """Indices of a map-style dataset of ``size`` items for process ``rank`` of ``world``.

    With ``shuffle`` the order of epoch $e$ is ``torch.randperm(size)`` drawn from a
    generator seeded $\\text{seed} + e$ (as ``DistributedSampler`` seeds it), else
    ``0, 1, ..., size - 1``. The order is padded by its own first items to
    $T = \\lceil \\text{size} / \\text{world} \\rceil \\cdot \\text{world}$ positions and
    process ``rank`` takes positions ``rank, rank + world, ...``: disjoint shards but for
    the $T - \\text{size} < \\text{world}$ padded ones, each of $T / \\text{world}$ indices.
    Unlike ``DistributedSampler``, which builds a Python list of every index each epoch,
    it yields lazily from one int64 tensor: an epoch of which a run takes 20 steps costs
    one ``randperm``, not ten million Python ints.

    Args:
        size: the number of items.
        shuffle: draw a permutation per epoch.
        seed: with the epoch, seeds the permutation.
        rank: this process's index in ``[0, world)``.
        world: the number of processes.

    Example:
        >>> sampler = EpochSampler(5, shuffle=False, rank=1, world=2)
        >>> list(sampler), len(sampler)
        ([1, 3, 0], 3)
    """

    def __init__(
        self, size: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1
    ) -> None:
        self.size = check_positive_int("size", size)
        self.world = check_positive_int("world", world)
        if not 0 <= rank < world:
            raise ValueError(f"rank must lie in [0, world={world}), got {rank}")
        self.shuffle, self.seed, self.rank, self.epoch = bool(shuffle), int(seed), rank, 0
        self.start = 0

    def set_start(self, start: int) -> None:
        """Begin the next iteration (that one only) at this process's index ``start`` of
        the epoch: a resume in the middle of an epoch; the order is the epoch's."""
        self.start = int(start)

    def set_epoch(self, epoch: int) -> None:
        """Which epoch's order to yield next (the order depends on ``(seed, epoch)`` only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.size // self.world)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        first, self.start = self.rank + self.start * self.world, 0
        for position in range(first, len(self) * self.world, self.world):
            yield int(order[position % self.size])


class ShardedIterable(IterableDataset[Any]):
    """The items of ``source`` that belong to process ``rank`` of ``world`` and to the
    ``DataLoader`` worker reading it: item $i$ goes to slot $i \\bmod (\\text{world} \\cdot
    \\text{workers})$, and this reader's slot is $\\text{rank} \\cdot \\text{workers} +
    \\text{worker id}$. Each item is read by exactly one (process, worker) pair.

    Example:
        >>> list(ShardedIterable(range(7), rank=1, world=2))
        [1, 3, 5]
    """

    def __init__(self, source: Iterable[Any], *, rank: int = 0, world: int = 1) -> None:
        self.source, self.rank, self.world = source, rank, world

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        slots, slot = self.world * workers, self.rank * workers + worker
        for index, item in enumerate(self.source):
            if index % slots == slot:
                yield item


class StreamBatches:
    """Batches read item by item from ``data`` through a ``DataLoader``, as `Batch` on
    ``device``: uint8 images moved as uint8 and scaled to $[0, 1]$ there, floating images
    cast to ``dtype``, labels as int64.

    ``data`` is a map-style dataset (``len`` and integer indexing), an
    ``IterableDataset`` (or any other iterable of items) or a ``DataLoader``; items are
    images or ``(image, label)`` pairs (tensors, or anything ``default_collate`` stacks).
    The batches of each process are its own shard (`sharded` is true): a trainer must not
    split them again. Call `set_epoch` before each epoch: the order (and the workers'
    seeds) of an epoch depend on ``(seed, epoch)`` alone.

    Args:
        data: the dataset or loader.
        batch_size: examples per step over all processes; each process reads
            $\\lceil \\text{batch size} / \\text{world} \\rceil$ of them.
        shuffle: a new order per epoch (map-style data only).
        seed: seeds the order and the workers.
        device: where the batches go.
        workers: ``DataLoader`` worker processes (0: read in this process).
        rank: this process's index.
        world: the number of processes.
        dtype: the floating dtype of the images.

    Raises:
        ValueError: on ``batch_size < 1``, ``workers < 0`` or an empty map-style dataset.

    Example:
        >>> items = [(torch.full((1, 2, 2), 255, dtype=torch.uint8), 3)] * 5
        >>> batches = StreamBatches(items, batch_size=2, device="cpu")
        >>> len(batches), [tuple(b.images.shape) for b in batches]
        (3, [(2, 1, 2, 2), (2, 1, 2, 2), (1, 1, 2, 2)])
        >>> next(iter(batches)).labels, float(next(iter(batches)).images.max())
        (tensor([3, 3]), 1.0)
    """

    sharded = True
    """Each process's batches are its own shard of the data."""

    def __init__(
        self,
        data: object,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        workers: int = 0,
        rank: int = 0,
        world: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        check_positive_int("batch_size", batch_size)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an int >= 0, got {workers!r}")
        self.data, self.device, self.dtype = data, torch.device(device), dtype
        self.shuffle, self.seed, self.workers = shuffle, int(seed), workers
        self.rank, self.world, self.epoch = rank, world, 0
        self.batch_size = -(-batch_size // world)
        self.sampler: EpochSampler | None = None
        if not isinstance(data, (DataLoader, IterableDataset)) and hasattr(data, "__len__"):
            if len(data) == 0:
                raise ValueError("data must hold at least one example, got an empty dataset")
            self.sampler = EpochSampler(
                len(data),
                shuffle=shuffle, seed=seed, rank=rank, world=world,
            )  # fmt: skip

    def set_epoch(self, epoch: int) -> None:
        """Draw the next iteration's order (and worker seeds) from ``(seed, epoch)``, and
        tell a dataset with a ``set_epoch`` method (an augmented `ImageFolder`) the epoch."""
        self.epoch = int(epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        if not isinstance(self.data, DataLoader) and hasattr(self.data, "set_epoch"):
            self.data.set_epoch(epoch)

    def __len__(self) -> int:
        """Steps per epoch; a ``TypeError`` for an iterable dataset, which has no length."""
        if self.sampler is not None:
            return -(-len(self.sampler) // self.batch_size)
        return len(self.data)  # type: ignore[arg-type]

    def _loader(self) -> Iterable[Any]:
        if isinstance(self.data, DataLoader):
            return self.data
        if self.sampler is not None:
            dataset, sampler = self.data, self.sampler
        else:
            dataset = ShardedIterable(self.data, rank=self.rank, world=self.world)  # type: ignore[arg-type]
            sampler = None
        return DataLoader(
            dataset,  # type: ignore[arg-type]
            batch_size=self.batch_size, sampler=sampler, num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.seed + self.epoch),
        )  # fmt: skip

    def iter_from(self, position: int) -> Iterator[Batch]:
        """This epoch's batches from batch ``position`` (0: the first) on. A map-style
        dataset's sampler starts there and the items before are never read; an iterable
        dataset or a ``DataLoader`` is read from its start and the batches before dropped."""
        if self.sampler is None:
            return itertools.islice(iter(self), position, None)
        self.sampler.set_start(position * self.batch_size)
        return iter(self)

    def __iter__(self) -> Iterator[Batch]:
        together = self.world > 1 and self.sampler is None and not isinstance(self.data, DataLoader)
        items = iter(self._loader())
        while True:
            item = next(items, None)
            if together and not _all_have(item is not None, self.device):
                return
            if item is None:
                return
            yield to_batch(item, self.device, self.dtype)


def _all_have(have: bool, device: torch.device) -> bool:
    """Whether every process has a batch this step (an all-reduce of one flag)."""
    flag = torch.tensor([int(have)], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item())
