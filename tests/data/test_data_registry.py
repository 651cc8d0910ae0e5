"""dataset_by_name, and the data layer's import rule."""

from __future__ import annotations

import ast
import gzip
import struct
import sys
from pathlib import Path

import pytest
import torch

import genlatent.data
from genlatent.data import DATASET_NAMES, dataset_by_name


def write_tiny_mnist(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    images = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 2, 2) + bytes(range(8))
    labels = struct.pack(">BBBBI", 0, 0, 8, 1, 2) + bytes([3, 4])
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))


def test_digits() -> None:
    data = dataset_by_name("digits", split="train")
    assert data.name == "digits-train"


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_from_root(tmp_path: Path, name: str) -> None:
    write_tiny_mnist(tmp_path / name)
    data = dataset_by_name(name, split="test", root=tmp_path)
    assert data.labels.tolist() == [3, 4]
    assert data.name == f"{name}-test"


def test_data_home_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny_mnist(tmp_path / "mnist")
    monkeypatch.setenv("GENLATENT_DATA", str(tmp_path))
    assert len(dataset_by_name("mnist", split="test")) == 2


def test_real_mnist(mnist_dir: Path) -> None:
    data = dataset_by_name("mnist", split="test", root=mnist_dir)
    assert data.images.shape == (10000, 1, 28, 28)


def test_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"could not find CIFAR-10"):
        dataset_by_name("cifar10", split="test", root=tmp_path)


def test_download_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_fetch(name: str, root: Path) -> Path:
        calls.append((name, root))
        write_tiny_mnist(root / name)
        return root / name

    monkeypatch.setattr(genlatent.data.registry, "fetch", fake_fetch)
    data = dataset_by_name("fashion-mnist", split="test", root=tmp_path, download=True)
    assert calls == [("fashion-mnist", tmp_path)]
    assert len(data) == 2
    dataset_by_name("fashion-mnist", split="test", root=tmp_path, download=True)
    assert len(calls) == 1  # present now: no second fetch


def test_errors() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown dataset 'svhn'; known names: mnist, fashion-mnist, cifar10, digits",
    ):
        dataset_by_name("svhn", split="train")
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'val'"):
        dataset_by_name("mnist", split="val")
    assert DATASET_NAMES == ("mnist", "fashion-mnist", "cifar10", "digits")


def test_data_layer_imports_only_torch_and_stdlib() -> None:
    folder = Path(genlatent.data.__file__).parent
    allowed = set(sys.stdlib_module_names) | {"torch", "genlatent"}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            lazy = {"sklearn": "digits.py", "PIL": "folder.py"}  # inside a function only
            for root in roots:
                if root in lazy:
                    assert path.name == lazy[root], path
                    assert node.col_offset > 0, path
                else:
                    assert root in allowed, f"{path.name} imports {root}"
    assert torch.__name__ == "torch"
