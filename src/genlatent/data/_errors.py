"""Errors raised by the data layer (defined in `genlatent.errors`, under `GenlatentError`)."""

from __future__ import annotations

from genlatent.errors import DataError, DownloadError

__all__ = ["DataError", "DownloadError"]
