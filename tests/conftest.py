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


@pytest.fixture
def cli_error(capsys: pytest.CaptureFixture[str]):
    """Run ``genlatent ARGV`` and require exit status 2 and one stderr line with ``fragments``.

    Usage: ``cli_error(["train", "--epochs", "0"], "epochs", "got 0")``.
    """
    from genlatent.cli import main

    def check(argv: list[str], *fragments: str) -> str:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err  # one line, no traceback
        assert err.startswith(f"genlatent {argv[0]}: error: ")
        for fragment in fragments:
            assert fragment in err, err
        return err

    return check
