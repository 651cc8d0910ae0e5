"""One way to write a file so that readers only ever see the old or the complete new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write"]


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable where the OS allows opening folders."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def previous_path(path: Path) -> Path:
    """Where ``keep_previous`` keeps the old file: ``last.pt`` -> ``last.prev.pt``."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    *,
    text: bool = False,
    keep_previous: bool = False,
    suffix: str = ".tmp",
) -> Iterator[IO[Any]]:
    """Yield a file to write; on success it is flushed, fsynced and renamed over ``path``.

    The bytes go to a temporary file in the same folder (so ``os.replace`` is an atomic
    rename, on POSIX and Windows) with a normal file's permissions. An exception inside
    the block (a failed write, a failed checksum, an interrupt) removes the temporary file
    and leaves ``path`` as it was. With ``keep_previous``, an existing ``path`` is first
    moved to `previous_path`. The folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes 0600; give it a normal file's mode
        handle: IO[Any] = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
