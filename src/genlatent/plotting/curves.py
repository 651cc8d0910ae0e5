"""Training curves from a run's ``metrics.jsonl`` records."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlatent.plotting._figure import new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["loss_curves_figure", "plot_loss_curves"]

# (metric suffix, panel title, y label for a VAE, y label for a VQ-VAE)
# titles and axis labels of the terms genlatent's models log; any other term a model logs
# gets a panel titled by its name (the model protocol logs every scalar field)
_KNOWN = {
    "loss": ("Loss (minimised)", "per example"),
    "reconstruction_loss": ("Reconstruction loss", "-log p(x|z) (nats) or MSE"),
    "kl": ("KL to the prior", "nats per example"),
    "quantizer_loss": ("Quantizer loss (added)", "per example"),
    "codebook": ("Codebook term", "MSE (per latent element)"),
    "commitment": ("Commitment term (unweighted)", "MSE (per latent element)"),
    "codes_used": ("Codes used in the epoch", "fraction of the codebook"),
    "usage_perplexity": ("Epoch code-usage perplexity", "perplexity (codes)"),
    "bits_per_code": ("Bits per code", "bits"),
}
_NOT_TERMS = {"examples"}


def _panels(keys: set[str]) -> list[tuple[str, str, str]]:
    """``(suffix, title, ylabel)`` for every term logged as ``train_X`` or ``test_X``."""
    suffixes = {k.split("_", 1)[1] for k in keys if k.startswith(("train_", "test_"))}
    suffixes -= _NOT_TERMS
    ordered = [name for name in _KNOWN if name in suffixes]
    ordered += sorted(suffixes - set(_KNOWN))
    return [
        (name, *_KNOWN.get(name, (name.replace("_", " ").capitalize(), ""))) for name in ordered
    ]


def _x_axis(records: Sequence[Mapping[str, Any]]) -> str:
    """``"step"`` where evaluations are more than one per epoch (a run with ``eval_every``)
    and every record has its step; else ``"epoch"``."""
    epochs = [r["epoch"] for r in records]
    repeated = len(set(epochs)) < len(epochs)
    return "step" if repeated and all("step" in r for r in records) else "epoch"


def _series(
    records: Sequence[Mapping[str, Any]], key: str, x: str = "epoch"
) -> tuple[list[float], list[float]]:
    points = [
        (float(r[x]), float(r[key]))
        for r in records
        if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
    ]
    return [p[0] for p in points], [p[1] for p in points]


def plot_loss_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Plot train and test loss per epoch, and one panel per term that was logged.

    The records are the per-epoch objects of a run's ``metrics.jsonl`` (see `fit`), which
    log every scalar term of the model's loss as ``train_<name>`` and ``test_<name>``: a
    VAE ``loss``, ``reconstruction_loss`` and ``kl`` in nats per image; a VQ-VAE ``loss``,
    ``reconstruction_loss`` (per-pixel MSE), ``quantizer_loss``, ``commitment`` (and
    ``codebook`` for a learnable codebook; an EMA codebook's is not optimised and not
    logged), plus ``train_codes_used`` and ``train_usage_perplexity``; any other model its
    own terms. Each gets a panel with a ``train`` and a ``test`` line where present, known
    terms first; ``images_per_second`` gets a throughput panel.

    Args:
        records: one mapping per epoch with at least ``epoch`` and ``train_loss`` or
            ``test_loss``.
        path: where the PNG goes.
        title: the figure title; defaults to "Training curves".

    Returns:
        ``path`` as a `Path`.

    Raises:
        ValueError: if ``records`` is empty, a record has no ``epoch``, or no record holds
            ``train_loss`` or ``test_loss``.
        ImportError: if matplotlib is not installed.

    Example:
        >>> import tempfile, pathlib
        >>> records = [{"epoch": 1, "train_loss": 3.0, "test_loss": 2.5},
        ...            {"epoch": 2, "train_loss": 2.0, "test_loss": 2.1}]
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     plot_loss_curves(records, pathlib.Path(folder) / "loss.png").name
        'loss.png'
    """
    return save_png(loss_curves_figure(records, title=title), path)


def loss_curves_figure(records: Sequence[Mapping[str, Any]], *, title: str | None = None) -> Figure:
    """The figure `plot_loss_curves` writes: one panel per logged term, train and test lines.

    Each panel's title names the term; its lines are labelled ``train`` and ``test`` and
    hold one point per record that logged the term (x: the epoch, or the step where a run
    evaluated more than once per epoch; y: the value).

    Args:
        records: one mapping per epoch with at least ``epoch`` and ``train_loss`` or
            ``test_loss``.
        title: the figure title; defaults to "Training curves".

    Returns:
        A `matplotlib.figure.Figure`, one axes per panel, drawn by Agg (no pyplot state).

    Raises:
        ValueError: if ``records`` is empty, a record has no ``epoch``, or no record holds
            ``train_loss`` or ``test_loss``.
        ImportError: if matplotlib is not installed.

    Example:
        >>> records = [{"epoch": 1, "train_loss": 3.0, "test_loss": 2.5},
        ...            {"epoch": 2, "train_loss": 2.0, "test_loss": 2.1}]
        >>> [line.get_label() for line in loss_curves_figure(records).axes[0].lines]
        ['train', 'test']
    """
    records = list(records)
    if not records:
        raise ValueError("records must hold at least one epoch's metrics, got an empty list")
    for i, record in enumerate(records):
        if not isinstance(record, Mapping) or "epoch" not in record:
            raise ValueError(f"records[{i}] must be a mapping with an 'epoch' key, got {record!r}")
    keys = set().union(*(record.keys() for record in records))
    if not keys & {"train_loss", "test_loss"}:
        raise ValueError(f"records must hold 'train_loss' or 'test_loss', got keys {sorted(keys)}")
    panels = _panels(keys)
    if "images_per_second" in keys:
        panels.append(("images_per_second", "Training throughput", "images/s"))

    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = new_figure(4.2 * columns, 3.2 * rows)
    from matplotlib.ticker import MaxNLocator  # importable: new_figure imported matplotlib

    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    x = _x_axis(records)
    for ax, (suffix, name, ylabel) in zip(axes, panels, strict=False):
        names = [suffix] if suffix == "images_per_second" else [f"train_{suffix}", f"test_{suffix}"]
        for key in names:
            where, values = _series(records, key, x)
            if where:
                ax.plot(where, values, marker="o", markersize=3, label=key.split("_", 1)[0])
        ax.set_title(name)
        ax.set_xlabel(x)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend()
    for ax in axes[len(panels) :]:
        ax.remove()
    figure.suptitle(title or "Training curves")
    return figure
