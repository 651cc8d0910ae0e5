"""Binarized images: a fresh Bernoulli draw each epoch for training, a fixed one for testing.

Dynamically binarized MNIST (used by Burda et al. 2016 and most VAE likelihood papers
since) treats each grey level as the probability of a black-or-white pixel: training sees
a new draw every epoch, the test set is drawn once with a fixed seed so that every model
is scored on the same binary images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import torch

from genlatent._validation import check_tensor
from genlatent.data.batching import Batch, TensorBatches, iter_from
from genlatent.data.dataset import ImageDataset
from genlatent.data.idx import load_mnist

__all__ = [
    "TEST_SEED",
    "BinarizedMNIST",
    "DynamicBinarization",
    "binarize",
    "binarized",
    "binarized_mnist",
]

TEST_SEED = 0
"""The seed of the one draw of a test set (`binarized`, the trainer's ``binarize``)."""


def binarize(images: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One Bernoulli draw per value, with the value's intensity as its probability.

    $x_i \sim \operatorname{Bernoulli}(p_i)$ with $p_i = v_i / 255$ for uint8 images (the
    result is uint8 in $\{0, 255\}$, so that batching scales it to $\{0, 1\}$) or
    $p_i = v_i$ for floating images in $[0, 1]$ (the result keeps their dtype).

    Args:
        images: uint8 in $[0, 255]$ or floating in $[0, 1]$, any shape.
        generator: the source of the draws (on the images' device).

    Returns:
        Binary images of the input's shape and dtype.

    Raises:
        TypeError: if ``images`` is neither uint8 nor floating point.
        ValueError: if floating ``images`` lie outside $[0, 1]$.

    Example:
        >>> images = torch.tensor([[0, 255, 128]], dtype=torch.uint8)
        >>> binarize(images, generator=torch.Generator().manual_seed(0))[0, :2]
        tensor([  0, 255], dtype=torch.uint8)
    """
    images = check_tensor("images", images)
    if images.dtype == torch.uint8:
        probs = images.to(torch.float32).div_(255)
        return torch.bernoulli(probs, generator=generator).mul_(255).to(torch.uint8)
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or floating, got {images.dtype}")
    if images.numel() and not bool(((images >= 0) & (images <= 1)).all()):
        raise ValueError("images must be in [0, 1] to be read as probabilities")
    return torch.bernoulli(images, generator=generator)


def binarized(data: ImageDataset, *, seed: int) -> ImageDataset:
    """A fixed binarization of ``data``: one draw from ``torch.Generator().manual_seed(seed)``.

    Use it for the test set, so that every evaluation sees the same binary images.

    Example:
        >>> data = ImageDataset(torch.full((2, 1, 2, 2), 128, dtype=torch.uint8), torch.arange(2))
        >>> torch.equal(binarized(data, seed=0).images, binarized(data, seed=0).images)
        True
        >>> binarized(data, seed=0).name
        'binarized-0'
    """
    name = f"{data.name}-binarized-{seed}" if data.name else f"binarized-{seed}"
    return ImageDataset(binarize_once(data.images, seed=seed), data.labels, name=name)


def binarize_once(images: torch.Tensor, *, seed: int) -> torch.Tensor:
    """`binarize` with ``torch.Generator().manual_seed(seed)`` on the images' device."""
    generator = torch.Generator(device=images.device).manual_seed(seed)
    return binarize(images, generator=generator)


class DynamicBinarization:
    """Batches with a fresh Bernoulli draw of every image each time they are iterated.

    Wraps any iterable of batches (a `TensorBatches`, a ``DataLoader``, a list): each item
    may be a `Batch`, an images tensor or a tuple whose first element is the images; the
    images are replaced by `binarize` of them and the rest is passed through. Iterating
    once per epoch gives a new draw per epoch (Burda et al. 2016's "dynamic binarization").

    Args:
        batches: the source, iterated once per epoch.
        generator: the source of the draws, on the batches' device.

    Example:
        >>> images = torch.full((4, 1, 2, 2), 128, dtype=torch.uint8)
        >>> train = DynamicBinarization(TensorBatches(images, batch_size=2),
        ...                             generator=torch.Generator().manual_seed(0))
        >>> len(train), sorted(next(iter(train)).images.unique().tolist())
        (2, [0.0, 1.0])
    """

    def __init__(
        self, batches: Iterable[object], *, generator: torch.Generator | None = None
    ) -> None:
        if not isinstance(batches, Iterable):
            raise TypeError(f"batches must be iterable, got {type(batches).__name__}")
        self.batches = batches
        self.generator = generator

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[object]:
        return self.iter_from(0)

    def iter_from(self, position: int) -> Iterator[object]:
        """The draws of the batches from batch ``position`` on (see `iter_from`): the
        batches skipped are neither read nor drawn."""
        for item in iter_from(self.batches, position):
            if isinstance(item, Batch):
                yield Batch(binarize(item.images, generator=self.generator), item.labels)
            elif isinstance(item, torch.Tensor):
                yield binarize(item, generator=self.generator)
            elif isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
                yield (binarize(item[0], generator=self.generator), *item[1:])
            else:
                raise TypeError(
                    "each batch must be a Batch, an images tensor or a tuple starting with "
                    f"one, got {type(item).__name__}"
                )


class BinarizedMNIST(NamedTuple):
    """What `binarized_mnist` returns."""

    train: DynamicBinarization
    """Training batches, drawn afresh every epoch."""
    test: ImageDataset
    """The test set binarized once, with the given seed."""


def binarized_mnist(
    root: str | os.PathLike[str],
    *,
    batch_size: int = 100,
    seed: int = TEST_SEED,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> BinarizedMNIST:
    """Dynamically binarized MNIST: shuffled training batches drawn afresh each epoch.

    The training set is batched by `TensorBatches` (shuffled with ``generator``) and
    binarized by `DynamicBinarization` (with the same ``generator``); the test set is
    `binarized` once with ``seed`` (0 by default, so that runs compare on one test set).

    Args:
        root: the folder with the MNIST IDX files (see `load_mnist`).
        batch_size: training images per batch.
        seed: the seed of the test set's draw.
        generator: the source of the shuffling and of the training draws.
        device: where the training data lives and the draws happen.

    Raises:
        FileNotFoundError: if an MNIST file is missing; as `load_mnist` raises.
    """
    train = TensorBatches(
        load_mnist(root, split="train"),
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
        device=device,
    )
    return BinarizedMNIST(
        DynamicBinarization(train, generator=generator),
        binarized(load_mnist(root, split="test"), seed=seed),
    )
