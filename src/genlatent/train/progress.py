"""A per-epoch progress bar (tqdm), quiet when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["progress"]

T = TypeVar("T")


class _Quiet:
    """Stands in for tqdm when there is no terminal or no tqdm."""

    shown = False

    def __init__(self, iterable: Iterable[Any]) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        del text, refresh

    def close(self) -> None:
        pass


def progress(
    iterable: Iterable[T], *, total: int | None, description: str, enabled: bool | None = None
) -> Any:
    """Wrap ``iterable`` in a tqdm bar when writing to a terminal (``enabled=None``)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return _Quiet(iterable)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Quiet(iterable)
    return tqdm(iterable, total=total, desc=description, leave=False, dynamic_ncols=True)
