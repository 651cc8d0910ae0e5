"""Lazy matplotlib: a backend-free `Figure` and a PNG writer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["INSTALL_HINT", "new_figure", "save_png"]

INSTALL_HINT = "pip install 'genlatent[plot]'"


def new_figure(width: float, height: float) -> Figure:
    """A `matplotlib.figure.Figure` drawn by Agg, with no pyplot and no global state.

    Raises:
        ImportError: if matplotlib is not installed; the message says how to install it.
    """
    try:
        # ``import matplotlib`` first: a cached ``matplotlib.figure`` must not hide a
        # missing (or deliberately blocked) parent package.
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"genlatent.plotting needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from error
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``figure`` to ``path`` as PNG (parent folders are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=kwargs.pop("dpi", 100), **kwargs)
    return path
