"""One exception hierarchy: each error of ours is a GenlatentError and its old builtin."""

from __future__ import annotations

import pytest

import genlatent
import genlatent.data
import genlatent.errors
import genlatent.train
from genlatent.errors import (
    CheckpointError,
    DataError,
    DownloadError,
    GenlatentError,
    ModelSpecError,
    NonFiniteLossError,
    RunDirectoryError,
)

BUILTINS = [
    (CheckpointError, RuntimeError),
    (DataError, ValueError),
    (DownloadError, OSError),
    (ModelSpecError, ValueError),
    (NonFiniteLossError, FloatingPointError),
    (RunDirectoryError, ValueError),
]


@pytest.mark.parametrize(("error", "builtin"), BUILTINS, ids=lambda e: e.__name__)
def test_each_error_is_caught_by_the_base_and_by_its_builtin(
    error: type[Exception], builtin: type[Exception]
) -> None:
    with pytest.raises(GenlatentError, match="boom"):
        raise error("boom")
    with pytest.raises(builtin, match="boom"):
        raise error("boom")


def test_every_error_is_listed_and_the_base_is_public() -> None:
    names = {error.__name__ for error, _ in BUILTINS} | {"GenlatentError"}
    assert set(genlatent.errors.__all__) == names
    assert genlatent.GenlatentError is GenlatentError
    assert issubclass(GenlatentError, Exception)


def test_errors_are_the_same_objects_where_they_are_raised() -> None:
    assert genlatent.train.CheckpointError is CheckpointError
    assert genlatent.train.NonFiniteLossError is NonFiniteLossError
    assert genlatent.train.RunDirectoryError is RunDirectoryError
    assert genlatent.data.DataError is DataError
    assert genlatent.data.DownloadError is DownloadError


def test_download_error_keeps_its_failures() -> None:
    error = DownloadError("no mirror", [("https://a", "404")])
    assert error.failures == [("https://a", "404")]
    assert isinstance(error, OSError)


def test_a_real_checkpoint_failure_is_a_genlatent_error(tmp_path) -> None:
    from genlatent.train import load_checkpoint

    with pytest.raises(GenlatentError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_the_spec_error_is_the_one_in_genlatent_errors() -> None:
    from genlatent.train import spec

    assert spec.ModelSpecError is ModelSpecError
