"""A folder of image files as a map-style dataset, decoded lazily with Pillow."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from genlatent._validation import check_positive_int
from genlatent.data._errors import DataError
from genlatent.data.augment import Augment

__all__ = ["IMAGE_SUFFIXES", "FolderSplit", "ImageFolder", "folder_splits"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""The file endings `ImageFolder` reads (any case)."""

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "reading image files needs Pillow: pip install 'genlatent[train]'"
        ) from error
    return Image


class ImageFolder(Dataset[tuple[torch.Tensor, int]]):
    """Every image file under ``root``, as uint8 ``(C, size, size)`` and a class index.

    As torchvision's ``ImageFolder``: each sub-folder of ``root`` is a class (sorted names,
    indexed from 0; files in deeper folders belong to their top sub-folder), and a flat
    folder of images is one class (``classes == [root's name]``). Files are listed once,
    in sorted order, and decoded only when read (in ``DataLoader`` workers, with
    ``fit(..., num_workers=)``). Each image is converted to ``channels`` (1: greyscale,
    3: RGB, 4: RGBA), resized so that its shorter side is ``size`` (bilinear, Pillow's
    antialiasing; the longer side $\\lfloor \\text{size} \\cdot \\text{long} /
    \\text{short} \\rfloor$) and centre-cropped to ``size`` x ``size`` (the crop's top-left
    corner at $\\operatorname{round}((H - \\text{size}) / 2)$,
    $\\operatorname{round}((W - \\text{size}) / 2)$): the rules of torchvision's
    ``Resize(size)`` and ``CenterCrop(size)``.

    Args:
        root: the folder.
        size: the side of the square images returned.
        channels: 1, 3 or 4.
        transform: applied to each uint8 ``(C, size, size)`` image after the crop.
        augment: train-time random crop and flip (see `Augment`), drawn from the item's
            index and the epoch set by `set_epoch` (the training set's only: give the
            test set none).
        skip_unreadable: check every file once, here (Pillow's ``verify``, which reads
            the file without decoding it), and leave out those that fail, recorded in
            `skipped`; by default a file that cannot be read is an error when it is read.

    Raises:
        FileNotFoundError: if ``root`` is not a folder or holds no image files.
        ValueError: on ``size < 1`` or ``channels`` not 1, 3 or 4.
        DataError: when an item's file cannot be decoded, naming the file.

    Shape:
        - item: ``(image, label)``: image ``(C, size, size)`` uint8, label an int.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as root:
        ...     for name in ("cats", "dogs"):
        ...         os.mkdir(os.path.join(root, name))
        ...         Image.new("RGB", (40, 30), "red").save(os.path.join(root, name, "a.png"))
        ...     data = ImageFolder(root, size=16)
        ...     image, label = data[1]
        >>> data.classes, len(data), image.shape, image.dtype, label
        (['cats', 'dogs'], 2, torch.Size([3, 16, 16]), torch.uint8, 1)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        size: int,
        channels: int = 3,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        skip_unreadable: bool = False,
        augment: Augment | None = None,
    ) -> None:
        self.root = Path(root)
        self.augment, self.epoch = augment, 0
        self.size = check_positive_int("size", size)
        if channels not in _MODES:
            raise ValueError(f"channels must be one of {tuple(_MODES)}, got {channels!r}")
        self.channels, self.transform = channels, transform
        if not self.root.is_dir():
            raise FileNotFoundError(f"root must be a folder of images, got {str(self.root)!r}")
        files = sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise FileNotFoundError(
                f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {str(self.root)!r}"
            )
        tops = [p.relative_to(self.root).parts for p in files]
        nested = sorted({parts[0] for parts in tops if len(parts) > 1})
        self.classes: list[str] = nested if nested else [self.root.name]
        self.skipped: list[Path] = []
        if skip_unreadable:
            files, self.skipped = _readable(files)
        self.files = files
        loose = [p for p in self.files if len(p.relative_to(self.root).parts) == 1]
        if nested and loose:
            raise FileNotFoundError(
                f"root {str(self.root)!r} holds class sub-folders and loose images such as "
                f"{loose[0].name!r}: put every image in a class folder, or none"
            )
        index = {name: i for i, name in enumerate(self.classes)}
        self.targets = [
            index[p.relative_to(self.root).parts[0]] if nested else 0 for p in self.files
        ]
        if not self.files:
            raise FileNotFoundError(f"no readable image files under {str(self.root)!r}")

    def set_epoch(self, epoch: int) -> None:
        """The epoch the augmentation draws for (`StreamBatches.set_epoch` calls it; a
        ``DataLoader`` copies the dataset into its workers when an epoch's iteration
        starts, so they see it)."""
        self.epoch = int(epoch)

    def with_augment(self, augment: Augment | None) -> ImageFolder:
        """The same files (listed once) with another augmentation, e.g. ``None`` for the
        test split of a folder whose training split is augmented."""
        copied = copy.copy(self)
        copied.augment = augment
        return copied

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.files[index]
        try:
            image = load_image(
                path, size=self.size, channels=self.channels, augment=self.augment,
                epoch=self.epoch, index=index,
            )  # fmt: skip
        except (OSError, ValueError, SyntaxError) as error:  # Pillow's kinds of bad file
            raise DataError(
                f"{path} cannot be read as an image ({' '.join(str(error).split())}); remove "
                "it or pass skip_unreadable=True"
            ) from error
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def __repr__(self) -> str:
        return (
            f"ImageFolder(root={str(self.root)!r}, size={self.size}, channels={self.channels}, "
            f"images={len(self)}, classes={len(self.classes)}, skipped={len(self.skipped)}, "
            f"augment={self.augment!r})"
        )


def load_image(
    path: str | os.PathLike[str],
    *,
    size: int,
    channels: int = 3,
    augment: Augment | None = None,
    epoch: int = 0,
    index: int = 0,
) -> torch.Tensor:
    """One image file as uint8 ``(C, size, size)``: shorter side resized to ``size``, centre
    crop (see `ImageFolder`); with ``augment``, the window and flip it draws for
    ``(epoch, index)`` in the image resized to ``augment.resized_side(size)``."""
    image_module = _pillow()
    short_side = size if augment is None else augment.resized_side(size)
    with image_module.open(path) as image:
        image = image.convert(_MODES[channels])
        width, height = image.size
        short, long = min(width, height), max(width, height)
        scaled = (short_side, int(short_side * long / short))
        new_width, new_height = scaled if width <= height else scaled[::-1]
        if (new_width, new_height) != (width, height):
            image = image.resize((new_width, new_height), image_module.Resampling.BILINEAR)
        if augment is None:
            top, left, flip = round((new_height - size) / 2), round((new_width - size) / 2), False
        else:
            draw = augment.draw(
                epoch=epoch, index=index, height=new_height, width=new_width, size=size
            )
            top, left, flip = draw.top, draw.left, draw.flip
        image = image.crop((left, top, left + size, top + size))
        if flip:
            image = image.transpose(image_module.Transpose.FLIP_LEFT_RIGHT)
        pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.reshape(size, size, channels).permute(2, 0, 1).contiguous()


def _readable(files: list[Path]) -> tuple[list[Path], list[Path]]:
    image_module = _pillow()
    kept, skipped = [], []
    for path in files:
        try:
            with image_module.open(path) as image:
                image.verify()
        except (OSError, ValueError, SyntaxError):
            skipped.append(path)
        else:
            kept.append(path)
    return kept, skipped


class FolderSplit(Dataset[tuple[torch.Tensor, int]]):
    """Some items of an `ImageFolder`, by index, keeping its ``classes``.

    Example:
        >>> split = FolderSplit([(torch.zeros(1, 2, 2), 0)] * 3, [2, 0], classes=["a"])
        >>> len(split), split.classes
        (2, ['a'])
    """

    def __init__(self, folder: Any, indices: list[int], *, classes: list[str]) -> None:
        self.folder, self.indices, self.classes = folder, list(indices), classes

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch on to the folder (its augmentation draws from it)."""
        if hasattr(self.folder, "set_epoch"):
            self.folder.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.folder[self.indices[index]]


def folder_splits(
    root: str | os.PathLike[str],
    *,
    size: int,
    test_fraction: float = 0.1,
    seed: int = 0,
    augment: Augment | None = None,
) -> tuple[ImageFolder | FolderSplit, ImageFolder | FolderSplit]:
    """The training and test images of a folder: ``root/train`` and ``root/test`` where
    both exist (each an `ImageFolder`), else a split of every image under ``root``: the
    first $\\max(1, \\operatorname{round}(f N))$ of ``torch.randperm(N)`` drawn from
    ``torch.Generator().manual_seed(seed)`` are the test set, the rest (in folder order)
    the training set. ``augment`` applies to the training images only.

    Raises:
        ValueError: if the split would leave no training image.
    """
    root = Path(root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train = ImageFolder(root / "train", size=size, augment=augment)
        return train, ImageFolder(root / "test", size=size)
    every = ImageFolder(root, size=size)
    order = torch.randperm(len(every), generator=torch.Generator().manual_seed(seed))
    count = max(1, round(test_fraction * len(every)))
    if count >= len(every):
        raise ValueError(
            f"test_fraction {test_fraction} of the {len(every)} images under {str(root)!r} "
            "leaves no training image: add images or hold out fewer"
        )
    held_out, kept = sorted(order[:count].tolist()), sorted(order[count:].tolist())
    return (
        FolderSplit(every.with_augment(augment), kept, classes=every.classes),
        FolderSplit(every, held_out, classes=every.classes),
    )
