"""Look datasets up by name."""

from __future__ import annotations

import os

from genlatent.data.cifar import CIFAR10_CLASSES, load_cifar10
from genlatent.data.dataset import ImageDataset
from genlatent.data.digits import load_digits
from genlatent.data.idx import load_mnist
from genlatent.data.remote import data_home, fetch

__all__ = ["DATASET_NAMES", "class_names", "dataset_by_name"]

DATASET_NAMES = ("mnist", "fashion-mnist", "cifar10", "digits")

_FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_CLASS_NAMES = {"cifar10": CIFAR10_CLASSES, "fashion-mnist": _FASHION_MNIST_CLASSES}


def class_names(name: str) -> tuple[str, ...] | None:
    """The names of a dataset's classes by label, where its labels are not the digits.

    Example:
        >>> class_names("fashion-mnist")[9], class_names("mnist")
        ('Ankle boot', None)
    """
    return _CLASS_NAMES.get(name)


def _load(name: str, split: str, root: os.PathLike[str] | str) -> ImageDataset:
    if name == "cifar10":
        return load_cifar10(root, split=split)
    return load_mnist(root, split=split, variant=name)


def dataset_by_name(
    name: str,
    *,
    split: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load a dataset by name: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"`` or ``"digits"``.

    Files are looked for in :func:`~genlatent.data.data_home` ``(root)`` and the
    sub-folders the loaders search. With ``download=True`` a dataset that is not found
    there is fetched (verified by SHA-256) into ``data_home(root)/<name>`` and loaded.
    ``"digits"`` ships with scikit-learn and ignores ``root`` and ``download``.

    Args:
        name: one of :data:`DATASET_NAMES`.
        split: ``"train"`` or ``"test"``.
        root: the data folder; see :func:`~genlatent.data.data_home`.
        download: fetch missing files.

    Returns:
        The :class:`ImageDataset`.

    Raises:
        ValueError: if ``name`` or ``split`` is unknown.
        FileNotFoundError: if the files are missing and ``download`` is false.

    Example:
        >>> from genlatent.data import dataset_by_name
        >>> dataset_by_name("digits", split="test")
        ImageDataset(name='digits-test', images=uint8(297, 1, 8, 8), labels=int64(297,))
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; known names: {', '.join(DATASET_NAMES)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be one of ('train', 'test'), got {split!r}")
    if name == "digits":
        return load_digits(split)
    home = data_home(root)
    try:
        return _load(name, split, home)
    except FileNotFoundError:
        if not download:
            raise
    fetch(name, home)
    return _load(name, split, home)
