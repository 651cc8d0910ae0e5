"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four official MNIST IDX files.

    ``$GENLATENT_TEST_MNIST`` if set, else ``<repo>/../shared/data/mnist``. Missing data
    skips the test, except under ``CI=true``, where it fails.
    """
    env = os.environ.get("GENLATENT_TEST_MNIST")
    folder = Path(env) if env else _REPO / ".." / "shared" / "data" / "mnist"
    if (
        not (folder / "train-images-idx3-ubyte.gz").is_file()
        and not (folder / "train-images-idx3-ubyte").is_file()
    ):
        message = f"MNIST not found in {folder} (set GENLATENT_TEST_MNIST to its folder)"
        if _ci():
            pytest.fail(message)
        pytest.skip(message)
    return folder.resolve()
