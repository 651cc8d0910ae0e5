"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


@pytest.fixture
def spawnable(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Any]:
    """Make a test module's worker function importable by ``torch.multiprocessing.spawn``.

    pytest (``--import-mode=importlib``) gives a test module a name such as
    ``tests.nn.test_...`` that a fresh interpreter cannot import; children receive the
    parent's ``sys.path``, so put the module's folder on it and pickle the worker by the
    module's basename. Returns the worker.
    """

    def make(worker: Any) -> Any:
        module = sys.modules[worker.__module__]
        path = Path(str(module.__file__))
        monkeypatch.syspath_prepend(str(path.parent))
        monkeypatch.setitem(sys.modules, path.stem, module)
        monkeypatch.setattr(worker, "__module__", path.stem)
        return worker

    return make
