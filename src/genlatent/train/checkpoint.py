"""Atomic checkpoint files, loaded without unpickling arbitrary code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genlatent._atomic import previous_path
from genlatent._checkpoint import CheckpointError, atomic_save, load_checkpoint

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint", "load_latest_checkpoint"]


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
    errors = []
    for candidate in (path, previous_path(path)):
        try:
            return load_checkpoint(candidate, map_location=map_location), candidate
        except CheckpointError as error:
            errors.append(str(error))
    raise CheckpointError("no usable checkpoint: " + "; ".join(errors))
