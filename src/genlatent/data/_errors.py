"""Errors raised by the data layer."""

from __future__ import annotations

__all__ = ["DataError", "DownloadError"]


class DataError(ValueError):
    """A data file is malformed: bad magic number, bad gzip stream, wrong size or count.

    The message names the file, what was expected and what was found.
    """


class DownloadError(OSError):
    """Every mirror failed to deliver a file with the expected SHA-256.

    Attributes:
        failures: one ``(url, reason)`` pair per mirror tried, in order.
    """

    def __init__(self, message: str, failures: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.failures: list[tuple[str, str]] = list(failures or [])
