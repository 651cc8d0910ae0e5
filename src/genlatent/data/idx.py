"""Readers of the IDX files that hold MNIST and Fashion-MNIST.

An IDX file is a big-endian header followed by the raw values:

$$\\underbrace{0,\\ 0,\\ \\mathtt{type},\\ \\mathtt{ndim}}_{\\text{magic, 4 bytes}}\\;
d_1 \\cdots d_{\\mathtt{ndim}}\\ (\\text{uint32 each})\\;
\\text{payload of } \\textstyle\\prod_i d_i \\text{ values}$$

MNIST uses type ``0x08`` (unsigned byte) only: images have magic 2051 (three dims,
``N x 28 x 28``), labels magic 2049 (one dim, ``N``).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import torch

from genlatent.data._errors import DataError
from genlatent.data.dataset import ImageDataset

__all__ = ["load_mnist", "read_idx"]

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

#: variant -> the folder torchvision keeps it in (``<root>/<folder>/raw``)
MNIST_VARIANTS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_bytes(path: Path) -> bytearray:
    """Read a raw or gzipped file fully; a bad gzip stream is a ``DataError``."""
    with open(path, "rb") as f:  # FileNotFoundError names the path
        raw = f.read()
    if path.suffix != ".gz":
        return bytearray(raw)
    if raw[:2] != _GZIP_MAGIC:
        raise DataError(
            f"{path}: expected a gzip stream (bytes 1f 8b), found {raw[:2].hex(' ') or 'nothing'}"
        )
    try:
        return bytearray(gzip.decompress(raw))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an IDX file of unsigned bytes, raw or gzipped (by its ``.gz`` suffix).

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        A ``torch.uint8`` tensor with the dims the header declares.

    Raises:
        FileNotFoundError: if the file does not exist.
        DataError: if the gzip stream is corrupt, the magic number is not
            ``00 00 08 ndim``, the header is short, or the payload size differs from
            the product of the dims. The message names the file, what was expected and
            what was found.

    Shape:
        Output: ``(d_1, ..., d_ndim)``, e.g. ``(N, 28, 28)`` for images, ``(N,)`` for labels.

    Example:
        >>> import struct, tempfile
        >>> from pathlib import Path
        >>> from genlatent.data import read_idx
        >>> path = Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([7, 1, 4]))
        >>> read_idx(path)
        tensor([7, 1, 4], dtype=torch.uint8)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: expected a 4-byte IDX magic number, found {len(data)} bytes")
    zero0, zero1, dtype_code, ndim = data[:4]
    magic = int.from_bytes(data[:4], "big")
    if zero0 != 0 or zero1 != 0 or ndim == 0:
        raise DataError(
            f"{path}: expected an IDX magic number 00 00 08 <ndim> "
            f"(2051 for images, 2049 for labels), found {magic} ({data[:4].hex(' ')})"
        )
    if dtype_code != _UBYTE:
        raise DataError(
            f"{path}: expected IDX value type 0x08 (unsigned byte), found 0x{dtype_code:02x}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: expected a {header}-byte header for {ndim} dims, found {len(data)} bytes"
        )
    dims = struct.unpack(f">{ndim}I", bytes(data[4:header]))
    expected = math.prod(dims)
    found = len(data) - header
    if found != expected:
        raise DataError(f"{path}: expected {expected} payload bytes for dims {dims}, found {found}")
    if expected == 0:
        return torch.empty(dims, dtype=torch.uint8)
    return torch.frombuffer(data, dtype=torch.uint8, offset=header).reshape(dims)


def _find_file(folders: list[Path], stem: str) -> Path:
    tried = []
    for folder in folders:
        for name in (stem, stem + ".gz"):
            candidate = folder / name
            if candidate.is_file():
                return candidate
            tried.append(str(candidate))
    raise FileNotFoundError(f"could not find {stem}[.gz]; looked for: {', '.join(tried)}")


def _mnist_folders(root: str | os.PathLike[str], variant: str) -> list[Path]:
    """The folders that may hold one MNIST variant's files, in search order."""
    root = Path(root).expanduser()
    return [root, root / variant, root / MNIST_VARIANTS[variant] / "raw"]


_FIRST_LABELS = {
    ("mnist", "train"): (60000, (5, 0, 4, 1, 9, 2, 1, 3, 1, 4)),
    ("mnist", "test"): (10000, (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)),
    ("fashion-mnist", "train"): (60000, (9, 0, 0, 3, 0, 2, 7, 2, 5, 5)),
    ("fashion-mnist", "test"): (10000, (9, 2, 1, 1, 6, 1, 4, 6, 5, 7)),
}
"""Each official split's size and first ten labels: what tells MNIST from Fashion-MNIST
(same layout, same names) when the files were recompressed and their SHA-256 differs."""


def _check_variant(variant: str, split: str, labels: torch.Tensor, path: Path) -> None:
    """Refuse the files of the other variant (official size and first labels) as ``variant``."""
    found = (int(labels.shape[0]), tuple(int(label) for label in labels[:10]))
    for (other, other_split), signature in _FIRST_LABELS.items():
        if other != variant and other_split == split and found == signature:
            flag = "--dataset " + other
            raise DataError(
                f"{path} holds the {other} {split} labels, not {variant}'s (its size and "
                f"first labels are {other}'s): load it as {other!r} ({flag}) or point the "
                f"data folder at the {variant} files"
            )


def load_mnist(
    root: str | os.PathLike[str],
    *,
    split: str = "train",
    variant: str = "mnist",
) -> ImageDataset:
    """Load MNIST or Fashion-MNIST from the official IDX files.

    The files keep their official names (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``),
    raw or with ``.gz``. They are looked for in ``root``, then ``root/<variant>`` (where
    :func:`~genlatent.data.fetch` puts them), then the torchvision layout
    ``root/MNIST/raw`` or ``root/FashionMNIST/raw``. An uncompressed file wins over its
    ``.gz`` in the same folder.

    Args:
        root: the folder to search.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        variant: ``"mnist"`` or ``"fashion-mnist"``.

    Returns:
        An :class:`ImageDataset` named ``"<variant>-<split>"`` with images
        ``(N, 1, 28, 28)`` uint8 and labels ``(N,)`` int64.

    Raises:
        ValueError: if ``split`` or ``variant`` is unknown.
        FileNotFoundError: if a file is missing (the message lists every path tried).
        DataError: if a file is corrupt, has the wrong magic number or ndim, or the
            image and label counts differ; or on the other variant's official files
            (told apart by their size and first labels).

    Example:
        >>> from genlatent.data import load_mnist
        >>> train = load_mnist("~/data", split="train")  # doctest: +SKIP
        >>> train.images.shape  # doctest: +SKIP
        torch.Size([60000, 1, 28, 28])
    """
    if split not in _MNIST_FILES:
        raise ValueError(f"split must be one of {tuple(_MNIST_FILES)}, got {split!r}")
    if variant not in MNIST_VARIANTS:
        raise ValueError(f"variant must be one of {tuple(MNIST_VARIANTS)}, got {variant!r}")
    folders = _mnist_folders(root, variant)
    image_stem, label_stem = _MNIST_FILES[split]
    image_path = _find_file(folders, image_stem)
    label_path = _find_file(folders, label_stem)
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3:
        raise DataError(
            f"{image_path}: expected an image file with 3 dims (magic 2051), "
            f"found {images.ndim} dims (magic {0x800 + images.ndim})"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{label_path}: expected a label file with 1 dim (magic 2049), "
            f"found {labels.ndim} dims (magic {0x800 + labels.ndim})"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{image_path} holds {images.shape[0]} images but {label_path} holds "
            f"{labels.shape[0]} labels; expected the same count"
        )
    _check_variant(variant, split, labels, label_path)
    return ImageDataset(
        images=images.unsqueeze(1),
        labels=labels.to(torch.int64),
        name=f"{variant}-{split}",
    )
