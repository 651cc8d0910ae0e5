"""CIFAR-10 python-version reader on tiny archives built in the official layout."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genlatent.data import DataError, load_cifar10

PER_BATCH = 3
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def make_images(seed: int, n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)


def batch_blob(images: torch.Tensor, labels: list[int], protocol: int = 2) -> bytes:
    # As the official files: a dict with b"data" (N, 3072) uint8 and b"labels" a list of ints.
    data = images.reshape(images.shape[0], -1).numpy()
    payload = {b"batch_label": b"batch", b"labels": labels, b"data": data, b"filenames": []}
    return pickle.dumps(payload, protocol=protocol)


def official_members(protocol: int = 2) -> tuple[dict[str, bytes], dict[str, torch.Tensor]]:
    members, truth = {}, {}
    train_images, train_labels = [], []
    for i, name in enumerate(TRAIN_BATCHES):
        images = make_images(i, PER_BATCH)
        labels = [(i + j) % 10 for j in range(PER_BATCH)]
        members[name] = batch_blob(images, labels, protocol)
        train_images.append(images)
        train_labels += labels
    test_images = make_images(99, PER_BATCH)
    members["test_batch"] = batch_blob(test_images, [9, 0, 5], protocol)
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    truth["train_images"] = torch.cat(train_images)
    truth["train_labels"] = torch.tensor(train_labels)
    truth["test_images"] = test_images
    truth["test_labels"] = torch.tensor([9, 0, 5])
    return members, truth


def write_archive(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def write_folder(root: Path, members: dict[str, bytes]) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, blob in members.items():
        (folder / name).write_bytes(blob)
    return folder


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("source", ["archive", "folder", "fetched"])
def test_load_both_splits(tmp_path: Path, protocol: int, source: str) -> None:
    members, truth = official_members(protocol)
    if source == "archive":
        write_archive(tmp_path / "cifar-10-python.tar.gz", members)
    elif source == "folder":
        write_folder(tmp_path, members)
    else:
        (tmp_path / "cifar10").mkdir()
        write_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz", members)
    train = load_cifar10(tmp_path, split="train")
    test = load_cifar10(tmp_path, split="test")
    assert train.images.shape == (5 * PER_BATCH, 3, 32, 32)
    assert train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64
    assert torch.equal(train.images, truth["train_images"])
    assert torch.equal(train.labels, truth["train_labels"])
    assert torch.equal(test.images, truth["test_images"])
    assert torch.equal(test.labels, truth["test_labels"])
    assert (train.name, test.name) == ("cifar10-train", "cifar10-test")


def test_channel_planes_layout(tmp_path: Path) -> None:
    # A row is the R plane, then G, then B, each 32x32 row-major.
    row = np.zeros((1, 3072), dtype=np.uint8)
    row[0, 0] = 10  # R at (0, 0)
    row[0, 1024] = 20  # G at (0, 0)
    row[0, 2048 + 32 + 2] = 30  # B at (1, 2)
    members = {"test_batch": pickle.dumps({b"data": row, b"labels": [3]}, protocol=2)}
    write_folder(tmp_path, members)
    image = load_cifar10(tmp_path, split="test").images[0]
    assert (int(image[0, 0, 0]), int(image[1, 0, 0]), int(image[2, 1, 2])) == (10, 20, 30)
    assert int(image.sum()) == 60


def test_python3_str_keys_and_label_array(tmp_path: Path) -> None:
    data = make_images(1, 2).reshape(2, -1).numpy()
    blob = pickle.dumps({"data": data, "labels": np.array([4, 7])}, protocol=4)
    write_folder(tmp_path, {"test_batch": blob})
    assert load_cifar10(tmp_path, split="test").labels.tolist() == [4, 7]


def _link(name: str, kind: bytes, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (_file("/etc/evil"), "refused member '/etc/evil' with an absolute path"),
        (_file("cifar-10-batches-py/../../evil"), "with a '..' component"),
        (_link("cifar-10-batches-py/data_batch_9", tarfile.SYMTYPE, "/etc/passwd"), "a link to"),
        (
            _link("cifar-10-batches-py/x", tarfile.LNKTYPE, "cifar-10-batches-py/test_batch"),
            "a link",
        ),
        (_link("cifar-10-batches-py/fifo", tarfile.FIFOTYPE, ""), "not a regular file"),
    ],
    ids=["absolute", "dotdot", "symlink", "hardlink", "fifo"],
)
def test_unsafe_members_refused(tmp_path: Path, extra: tarfile.TarInfo, message: str) -> None:
    members, _ = official_members()
    archive = write_archive(tmp_path / "cifar-10-python.tar.gz", members, [extra])
    with pytest.raises(DataError, match=message):
        load_cifar10(tmp_path, split="test")
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-python.tar.gz"]  # nothing extracted
    assert archive.is_file()


def test_symlink_replacing_a_batch_refused(tmp_path: Path) -> None:
    members, _ = official_members()
    del members["test_batch"]
    link = _link("cifar-10-batches-py/test_batch", tarfile.SYMTYPE, "/etc/passwd")
    write_archive(tmp_path / "cifar-10-python.tar.gz", members, [link])
    with pytest.raises(DataError, match=r"refused member 'cifar-10-batches-py/test_batch'"):
        load_cifar10(tmp_path, split="test")


@pytest.mark.parametrize("where", ["archive", "folder"])
def test_malicious_batch_refused(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {marker}",)

    members, _ = official_members()
    members["test_batch"] = pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2)
    if where == "archive":
        write_archive(tmp_path / "cifar-10-python.tar.gz", members)
    else:
        write_folder(tmp_path, members)
    with pytest.raises(pickle.UnpicklingError, match=r"test_batch: refused to load global"):
        load_cifar10(tmp_path, split="test")
    assert not marker.exists()


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"could not find CIFAR-10 .*cifar-10-python.tar.gz"
    ):
        load_cifar10(tmp_path)


def test_missing_member(tmp_path: Path) -> None:
    members, _ = official_members()
    del members["data_batch_3"]
    write_archive(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match=r"expected members \['cifar-10-batches-py/data_batch_3'\]"):
        load_cifar10(tmp_path, split="train")


def test_truncated_archive(tmp_path: Path) -> None:
    members, _ = official_members()
    archive = write_archive(tmp_path / "cifar-10-python.tar.gz", members)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match=r"corrupt or truncated archive"):
        load_cifar10(tmp_path, split="test")


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tar file at all" * 100)
    with pytest.raises(DataError, match=r"corrupt or truncated archive"):
        load_cifar10(tmp_path, split="test")


def test_bad_batches(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, {})
    cases = [
        (pickle.dumps([1, 2], protocol=2), "expected a pickled dict, found list"),
        (
            pickle.dumps({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}),
            r"expected 'data' of shape \(N, 3072\), found \(2, 3071\)",
        ),
        (
            pickle.dumps({b"data": np.zeros((2, 3072), np.int64), b"labels": [0, 1]}),
            r"expected 'data' as uint8 array \(N, 3072\), found torch.int64",
        ),
        (
            pickle.dumps({b"labels": [0]}),
            r"expected 'data' as uint8 array \(N, 3072\), found NoneType",
        ),
        (
            pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
            "expected 2 labels to match the images, found 1",
        ),
        (
            pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}),
            r"expected labels in 0\.\.9, found 10\.\.10",
        ),
        (
            pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": ["a"]}),
            "expected 'labels' as a list of ints",
        ),
        (b"\x80\x02}q\x00", "test_batch: not a readable CIFAR-10 batch"),
    ]
    for blob, message in cases:
        (folder / "test_batch").write_bytes(blob)
        with pytest.raises(DataError, match=message):
            load_cifar10(tmp_path, split="test")


def test_bad_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'all'"):
        load_cifar10(tmp_path, split="all")


def test_the_unpacked_folder_itself_is_a_data_dir(tmp_path: Path) -> None:
    members, truth = official_members(4)
    folder = write_folder(tmp_path, members)
    test = load_cifar10(folder, split="test")  # root/cifar-10-batches-py passed as root
    assert torch.equal(test.images, truth["test_images"])
    assert torch.equal(test.labels, truth["test_labels"])
