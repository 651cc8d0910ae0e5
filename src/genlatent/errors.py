"""Every error genlatent raises of its own, under one base: `GenlatentError`.

Each type also subclasses the builtin it has always been, so code written against the
builtin keeps working, and ``except GenlatentError`` catches anything of ours::

    GenlatentError(Exception)
    ├── CheckpointError(GenlatentError, RuntimeError)    a checkpoint is missing, corrupt, unsafe
    ├── DataError(GenlatentError, ValueError)            a data file is malformed
    ├── DownloadError(GenlatentError, OSError)           no mirror delivered the right bytes
    ├── ModelSpecError(GenlatentError, ValueError)       a ``--model`` spec builds no model
    ├── NonFiniteLossError(GenlatentError, FloatingPointError)  training produced NaN or inf
    └── RunDirectoryError(GenlatentError, ValueError)    a run directory is missing or foreign

Wrong arguments are not among them: a bad argument raises the builtin ``TypeError`` or
``ValueError`` naming it, as PyTorch does.

This module is on the ground floor (it imports nothing), so every layer may raise these;
each is also importable from the module that raises it (`genlatent.train.CheckpointError`,
`genlatent.data.DataError`, ...).
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DataError",
    "DownloadError",
    "GenlatentError",
    "ModelSpecError",
    "NonFiniteLossError",
    "RunDirectoryError",
]


class GenlatentError(Exception):
    """The base of every error genlatent raises of its own (see `genlatent.errors`).

    Example:
        >>> from genlatent.errors import DataError, GenlatentError
        >>> issubclass(DataError, GenlatentError), issubclass(DataError, ValueError)
        (True, True)
    """


class CheckpointError(GenlatentError, RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or unsafe."""


class DataError(GenlatentError, ValueError):
    """A data file is malformed: bad magic number, bad gzip stream, wrong size or count.

    The message names the file, what was expected and what was found.
    """


class DownloadError(GenlatentError, OSError):
    """Every mirror failed to deliver a file with the expected SHA-256.

    Attributes:
        failures: one ``(url, reason)`` pair per mirror tried, in order.
    """

    def __init__(self, message: str, failures: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.failures: list[tuple[str, str]] = list(failures or [])


class ModelSpecError(GenlatentError, ValueError):
    """A ``--model`` spec names no file, module or function, or builds no usable model."""


class NonFiniteLossError(GenlatentError, FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the epoch, step and term."""


class RunDirectoryError(GenlatentError, ValueError):
    """A run directory is missing, belongs to another run, or is malformed."""
