"""Unit tests of the IDX reader and ``load_mnist`` on tiny files built in tmp_path."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlatent.data import DataError, load_mnist, read_idx


def idx_bytes(values: torch.Tensor, *, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, values.ndim)
    header += struct.pack(f">{values.ndim}I", *values.shape)
    return header + values.to(torch.uint8).numpy().tobytes()


def write(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def write_mnist(folder: Path, split: str, n_images: int, n_labels: int, *, gz: bool) -> None:
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    images = torch.arange(n_images * 4 * 3).reshape(n_images, 4, 3) % 256
    labels = torch.arange(n_labels) % 10
    write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images))
    write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels))


@settings(deadline=None, max_examples=25)
@given(
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    seed=st.integers(0, 2**31 - 1),
    gz=st.booleans(),
)
def test_round_trip(tmp_path_factory: pytest.TempPathFactory, shape, seed, gz) -> None:
    gen = torch.Generator().manual_seed(seed)
    values = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    path = tmp_path_factory.mktemp("idx") / ("values-idx-ubyte" + (".gz" if gz else ""))
    write(path, idx_bytes(values))
    out = read_idx(path)
    assert out.dtype == torch.uint8
    assert out.shape == values.shape
    assert torch.equal(out, values)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing-here"):
        read_idx(tmp_path / "nothing-here")


def test_wrong_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "bad", b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match=r"bad: expected an IDX magic number 00 00 08 .*found"):
        read_idx(path)


def test_zero_ndim_is_bad_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "bad", b"\x00\x00\x08\x00")
    with pytest.raises(DataError, match=r"expected an IDX magic number"):
        read_idx(path)


def test_wrong_value_type(tmp_path: Path) -> None:
    path = write(tmp_path / "floats", idx_bytes(torch.zeros(4), type_code=0x0D))
    with pytest.raises(DataError, match=r"floats: expected IDX value type 0x08 .*found 0x0d"):
        read_idx(path)


def test_short_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "short", b"\x00\x00")
    with pytest.raises(
        DataError, match=r"short: expected a 4-byte IDX magic number, found 2 bytes"
    ):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = write(tmp_path / "hdr", b"\x00\x00\x08\x03" + struct.pack(">I", 2))
    with pytest.raises(
        DataError, match=r"hdr: expected a 16-byte header for 3 dims, found 8 bytes"
    ):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path: Path, gz: bool) -> None:
    payload = idx_bytes(torch.zeros(3, 2, 2))[:-1]
    path = write(tmp_path / ("trunc" + (".gz" if gz else "")), payload)
    with pytest.raises(
        DataError, match=r"expected 12 payload bytes for dims \(3, 2, 2\), found 11"
    ):
        read_idx(path)


def test_extra_payload(tmp_path: Path) -> None:
    path = write(tmp_path / "long", idx_bytes(torch.zeros(3)) + b"\x00")
    with pytest.raises(DataError, match=r"expected 3 payload bytes for dims \(3,\), found 4"):
        read_idx(path)


def test_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "plain.gz"
    path.write_bytes(idx_bytes(torch.zeros(3)))
    with pytest.raises(DataError, match=r"plain.gz: expected a gzip stream \(bytes 1f 8b\)"):
        read_idx(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(torch.arange(200) % 7))[:-12])
    with pytest.raises(DataError, match=r"cut.gz: corrupt or truncated gzip stream"):
        read_idx(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(idx_bytes(torch.arange(200) % 7)))
    data[12:20] = b"\xff" * 8
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"corrupt.gz: corrupt or truncated gzip stream"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist(tmp_path: Path, gz: bool, split: str) -> None:
    write_mnist(tmp_path, split, 5, 5, gz=gz)
    data = load_mnist(tmp_path, split=split)
    assert data.images.shape == (5, 1, 4, 3)
    assert data.labels.tolist() == [0, 1, 2, 3, 4]
    assert data.labels.dtype == torch.int64
    assert data.name == f"mnist-{split}"


@pytest.mark.parametrize(
    ("variant", "subfolder"),
    [
        ("mnist", "MNIST/raw"),
        ("fashion-mnist", "FashionMNIST/raw"),
        ("fashion-mnist", "fashion-mnist"),
    ],
)
def test_load_mnist_subfolders(tmp_path: Path, variant: str, subfolder: str) -> None:
    write_mnist(tmp_path / subfolder, "test", 3, 3, gz=True)
    data = load_mnist(tmp_path, split="test", variant=variant)
    assert len(data) == 3
    assert data.name == f"{variant}-test"


def test_load_mnist_prefers_raw_over_gz(tmp_path: Path) -> None:
    write_mnist(tmp_path, "test", 2, 2, gz=True)
    write_mnist(tmp_path, "test", 4, 4, gz=False)
    assert len(load_mnist(tmp_path, split="test")) == 4


def test_load_mnist_count_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path, "train", 5, 4, gz=False)
    with pytest.raises(DataError, match=r"holds 5 images but .* holds 4 labels"):
        load_mnist(tmp_path, split="train")


def test_load_mnist_swapped_files(tmp_path: Path) -> None:
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(torch.zeros(3)))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(torch.zeros(3)))
    with pytest.raises(
        DataError, match=r"expected an image file with 3 dims \(magic 2051\), found 1"
    ):
        load_mnist(tmp_path, split="test")


def test_load_mnist_labels_with_images_magic(tmp_path: Path) -> None:
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(torch.zeros(3, 2, 2)))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(torch.zeros(3, 2, 2)))
    with pytest.raises(
        DataError, match=r"expected a label file with 1 dim \(magic 2049\), found 3"
    ):
        load_mnist(tmp_path, split="test")


def test_load_mnist_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"could not find t10k-images-idx3-ubyte\[.gz\]"):
        load_mnist(tmp_path, split="test")


def test_load_mnist_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'val'"):
        load_mnist(tmp_path, split="val")
    with pytest.raises(ValueError, match=r"variant must be one of .* got 'kmnist'"):
        load_mnist(tmp_path, variant="kmnist")


def _write_official_looking(folder: Path, first_labels: tuple[int, ...], split: str) -> None:
    """Files of an official split's size whose first labels are ``first_labels``."""
    prefix = "train" if split == "train" else "t10k"
    count = 60000 if split == "train" else 10000
    labels = torch.arange(count) % 10
    labels[: len(first_labels)] = torch.tensor(first_labels)
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / f"{prefix}-images-idx3-ubyte", idx_bytes(torch.zeros(count, 1, 1)))
    write(folder / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels))


FASHION_FIRST = {"train": (9, 0, 0, 3, 0, 2, 7, 2, 5, 5), "test": (9, 2, 1, 1, 6, 1, 4, 6, 5, 7)}


@pytest.mark.parametrize("split", ["train", "test"])
def test_fashion_mnist_files_are_not_read_as_mnist(tmp_path: Path, split: str) -> None:
    """Same layout and file names: the official size and first labels tell them apart."""
    _write_official_looking(tmp_path, FASHION_FIRST[split], split)
    with pytest.raises(DataError, match=r"holds the fashion-mnist .* labels, not mnist's.*"
                       r"--dataset fashion-mnist"):  # fmt: skip
        load_mnist(tmp_path, split=split)
    assert len(load_mnist(tmp_path, split=split, variant="fashion-mnist")) in (60000, 10000)
    # files whose first labels are neither's (a subset, a reshuffle) load as asked
    _write_official_looking(tmp_path, (1,) * 10, split)
    assert len(load_mnist(tmp_path, split=split)) in (60000, 10000)


def test_real_mnist_is_not_read_as_fashion_mnist(mnist_dir: Path, tmp_path: Path) -> None:
    assert load_mnist(mnist_dir, split="test").labels[:3].tolist() == [7, 2, 1]
    with pytest.raises(DataError, match=r"holds the mnist test labels, not fashion-mnist's"):
        load_mnist(mnist_dir, split="test", variant="fashion-mnist")
