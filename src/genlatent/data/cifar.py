"""Reader of the official CIFAR-10 python version, without numpy and without running pickles.

The archive ``cifar-10-python.tar.gz`` unpacks to ``cifar-10-batches-py/`` with
``data_batch_1`` ... ``data_batch_5`` (10,000 training images each), ``test_batch`` and
``batches.meta``. Each batch is a pickle (Python 2 ``cPickle``, protocol 2) of a dict with
``b"data"``, a ``uint8`` array ``(10000, 3072)`` whose rows are the red, green and blue
planes of a 32x32 image in row-major order, and ``b"labels"``, a list of ints in 0..9.
"""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path, PurePosixPath

import torch

from genlatent.data._errors import DataError
from genlatent.data._unpickle import restricted_loads
from genlatent.data.dataset import ImageDataset

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_FOLDER = "cifar-10-batches-py"
_ARCHIVE = "cifar-10-python.tar.gz"
_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    """Refuse members that could escape a folder or point elsewhere."""
    name = PurePosixPath(member.name)
    if member.name.startswith(("/", "\\")) or (len(member.name) > 1 and member.name[1] == ":"):
        raise DataError(f"{archive}: refused member {member.name!r} with an absolute path")
    if ".." in name.parts:
        raise DataError(f"{archive}: refused member {member.name!r} with a '..' component")
    if member.issym() or member.islnk():
        raise DataError(f"{archive}: refused member {member.name!r}, a link to {member.linkname!r}")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refused member {member.name!r}, not a regular file")


def _read_archive(archive: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Read the wanted batches straight from the archive, in one streaming pass."""
    wanted = {f"{_FOLDER}/{name}": name for name in names}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                _check_member(archive, member)
                key = wanted.get(member.name.removeprefix("./"))
                if key is not None and member.isfile():
                    file = tar.extractfile(member)
                    if file is None:  # pragma: no cover - regular files always have data
                        continue
                    found[key] = file.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"{archive}: corrupt or truncated archive ({exc})") from exc
    missing = [f"{_FOLDER}/{name}" for name in names if name not in found]
    if missing:
        raise DataError(f"{archive}: expected members {missing}, found none of that name")
    return found


def _read_folder(folder: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in names}


def _parse_batch(source: str, raw: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        batch = restricted_loads(raw)
    except pickle.UnpicklingError as exc:
        raise pickle.UnpicklingError(f"{source}: {exc}") from exc
    except (EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DataError(f"{source}: not a readable CIFAR-10 batch ({exc!r})") from exc
    if not isinstance(batch, dict):
        raise DataError(f"{source}: expected a pickled dict, found {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8 or data.ndim != 2:
        found = (
            f"{data.dtype} {tuple(data.shape)}"
            if isinstance(data, torch.Tensor)
            else type(data).__name__
        )
        raise DataError(f"{source}: expected 'data' as uint8 array (N, 3072), found {found}")
    if data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{source}: expected 'data' of shape (N, 3072), found {tuple(data.shape)}")
    try:
        label_tensor = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{source}: expected 'labels' as a list of ints ({exc})") from exc
    if label_tensor.numel() != data.shape[0]:
        raise DataError(
            f"{source}: expected {data.shape[0]} labels to match the images, "
            f"found {label_tensor.numel()}"
        )
    if label_tensor.numel() and not (int(label_tensor.min()) >= 0 and int(label_tensor.max()) < 10):
        raise DataError(
            f"{source}: expected labels in 0..9, found {int(label_tensor.min())}.."
            f"{int(label_tensor.max())}"
        )
    return data.reshape(-1, 3, 32, 32), label_tensor


def load_cifar10(root: str | os.PathLike[str], *, split: str = "train") -> ImageDataset:
    """Load CIFAR-10 from the official python version, folder or archive.

    Looks, in order, for ``root/cifar-10-batches-py/`` (or ``root`` itself, if it is
    that folder), ``root/cifar-10-python.tar.gz``, then the same two under
    ``root/cifar10/`` (where
    :func:`~genlatent.data.fetch` puts the archive). Batches are read straight
    from the archive, never extracted to disk; members with absolute paths, ``..``
    components, or links are refused. The pickles are read by a restricted unpickler
    that resolves only numpy's array-rebuilding globals (to stand-ins of ours) and never
    imports numpy or runs code from the file.

    Args:
        root: the folder to search.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000 images).

    Returns:
        An :class:`ImageDataset` named ``"cifar10-<split>"``; class names are in
        :data:`CIFAR10_CLASSES`.

    Raises:
        ValueError: if ``split`` is unknown.
        FileNotFoundError: if neither the folder nor the archive exists, or a batch is
            missing from the folder.
        DataError: if the archive is corrupt, has an unsafe member, lacks a batch, or a
            batch has the wrong layout.
        pickle.UnpicklingError: if a batch names any global outside the allow-list.

    Shape:
        - images: ``(N, 3, 32, 32)`` uint8, channels R, G, B.
        - labels: ``(N,)`` int64 in 0..9.

    Example:
        >>> from genlatent.data import load_cifar10
        >>> test = load_cifar10("~/data", split="test")  # doctest: +SKIP
        >>> test.images.shape  # doctest: +SKIP
        torch.Size([10000, 3, 32, 32])
    """
    if split not in _BATCHES:
        raise ValueError(f"split must be one of {tuple(_BATCHES)}, got {split!r}")
    names = _BATCHES[split]
    root = Path(root).expanduser()
    tried = []
    for base in (root, root / "cifar10"):
        folder, archive = base / _FOLDER, base / _ARCHIVE
        if base == root and root.name == _FOLDER and root.is_dir():
            folder = root  # the unpacked folder itself
        if folder.is_dir():
            raw, prefix = _read_folder(folder, names), folder
            break
        if archive.is_file():
            raw, prefix = _read_archive(archive, names), archive / _FOLDER
            break
        tried += [str(folder), str(archive)]
    else:
        raise FileNotFoundError(
            f"could not find CIFAR-10 (python version); looked for: {', '.join(tried)}"
        )
    parts = [_parse_batch(str(prefix / name), raw[name]) for name in names]
    images = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return ImageDataset(images=images, labels=labels, name=f"cifar10-{split}")
