"""Checkpoint files: written atomically, loaded without unpickling arbitrary code.

Private and below every layer, the one module of checkpoint code: the trainer (which
re-exports `load_checkpoint` and `CheckpointError` from `genlatent.train`), `load_run`'s
fallback and the metrics' cached classifier all read and write through it.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from genlatent._atomic import atomic_write, previous_path
from genlatent.errors import CheckpointError

__all__ = [
    "CheckpointError",
    "atomic_save",
    "load_checkpoint",
    "load_first_readable",
    "load_latest_checkpoint",
]


def atomic_save(
    state: Mapping[str, Any], path: str | os.PathLike[str], *, keep_previous: bool = False
) -> None:
    """Write ``state`` with ``torch.save`` so that ``path`` is always a complete file.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, and the
    file is renamed over ``path`` (see `atomic_write`). A crash at any moment leaves either
    the old or the new checkpoint, never a partial one. With ``keep_previous``, the old
    file is first kept as ``<name>.prev<suffix>``.
    """
    with atomic_write(path, keep_previous=keep_previous) as handle:
        torch.save(dict(state), handle)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def load_checkpoint(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `atomic_save`, refusing anything but plain data.

    Uses ``torch.load(weights_only=True)``: tensors, numbers, strings and containers load;
    a pickle that would import or call anything else is refused without being run.

    Raises:
        CheckpointError: naming the file, if it is missing, truncated, corrupt or unsafe.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt and cannot be read: not a torch.save "
            "archive"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain data and was "
            f"refused (it may be malicious or from another program): {_first_line(error)}"
        ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt and cannot be read: {_first_line(error)}"
        ) from error
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} must hold a dict, got {type(state).__name__}")
    return state


def load_first_readable(
    paths: Sequence[Path], *, map_location: Any = "cpu"
) -> tuple[dict[str, Any], Path]:
    """Load the first of ``paths`` that reads; return its state and the file it came from.

    Raises:
        CheckpointError: if none can be loaded; the message names every file and why.
    """
    errors = []
    for candidate in paths:
        try:
            return load_checkpoint(candidate, map_location=map_location), candidate
        except CheckpointError as error:
            errors.append(str(error))
    raise CheckpointError("no readable checkpoint: " + "; ".join(errors))


def load_latest_checkpoint(
    path: str | os.PathLike[str], *, map_location: Any = "cpu"
) -> tuple[dict[str, Any], Path]:
    """Load ``path``, or fall back to the previous checkpoint kept beside it.

    Returns:
        The state and the file it came from.

    Raises:
        CheckpointError: if neither file can be loaded; the message names both.
    """
    path = Path(path)
    return load_first_readable([path, previous_path(path)], map_location=map_location)
