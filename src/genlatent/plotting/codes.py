"""How a VQ-VAE uses its codebook."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from genlatent._validation import check_ndim, check_tensor
from genlatent.functional.quantize import counts_perplexity
from genlatent.plotting._figure import new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["code_usage_figure", "plot_code_usage"]


def plot_code_usage(
    counts: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    r"""Bar chart of each code's share of the assignments, most used first, as a PNG.

    The title gives the fraction of the $K$ codes used at least once and the usage
    perplexity $\exp H(p)$, $p_k = n_k / \sum_j n_j$ (1 for a single code, $K$ for uniform
    use); a dashed line marks the uniform share $1/K$. `code_usage_figure` returns the
    same figure without writing it.

    Args:
        counts: how often each code was chosen, e.g.
            ``torch.bincount(indices.flatten(), minlength=K)``; any non-negative numbers.
        path: where the PNG goes.
        title: a first title line, e.g. the run's name.

    Returns:
        ``path`` as a `Path`.

    Raises:
        TypeError: if ``counts`` is not a tensor.
        ValueError: if ``counts`` is not 1-D or 2-D, is empty, has a negative entry or
            sums to 0.
        ImportError: if matplotlib is not installed.

    Shape:
        - counts: $(K,)$, or $(S, K)$ for one panel per stage (residual VQ)

    Example:
        >>> import tempfile, pathlib, torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     plot_code_usage(torch.tensor([5, 0, 3, 1]), pathlib.Path(folder) / "c.png").name
        'c.png'
    """
    return save_png(code_usage_figure(counts, title=title), path)


def code_usage_figure(counts: torch.Tensor, *, title: str | None = None) -> Figure:
    r"""The figure `plot_code_usage` writes: one bar per code, its share of the assignments.

    The bars hold the shares $n_k / \sum_j n_j$ sorted in decreasing order (they sum to 1),
    the dashed line the uniform share $1/K$, the title the codes used and the perplexity.
    A multi-stage histogram $(S, K)$ (residual VQ's ``counts``) gets one panel per stage,
    stage $s$ titled with its own codes used and perplexity; a stage that saw no
    assignment (left out by quantize dropout) is drawn empty and says so.

    Args:
        counts: how often each code was chosen; any non-negative numbers.
        title: a first title line, e.g. the run's name.

    Returns:
        A `matplotlib.figure.Figure` with one axes per stage, drawn by Agg (no pyplot
        state).

    Raises:
        TypeError: if ``counts`` is not a tensor.
        ValueError: if ``counts`` is not 1-D or 2-D, is empty, has a negative entry or
            sums to 0.
        ImportError: if matplotlib is not installed.

    Shape:
        - counts: $(K,)$ or $(S, K)$

    Example:
        >>> import torch
        >>> figure = code_usage_figure(torch.tensor([5, 0, 3, 2]))
        >>> [round(float(bar.get_height()), 3) for bar in figure.axes[0].patches]
        [0.5, 0.3, 0.2, 0.0]
        >>> figure.axes[0].get_title()
        'Code usage: 3/4 codes used (75%), perplexity 2.8'
        >>> len(code_usage_figure(torch.tensor([[5, 0, 3, 2], [1, 1, 1, 1]])).axes)
        2
    """
    check_tensor("counts", counts)
    check_ndim("counts", counts, (1, 2), "(K,) or (S, K)")
    counts = counts.detach().cpu().to(torch.float64)
    if counts.shape[-1] == 0 or counts.shape[0] == 0:
        raise ValueError("counts must hold one count per code, got an empty tensor")
    if bool((counts < 0).any()):
        raise ValueError(f"counts must be non-negative, got a minimum of {counts.min().item()}")
    if counts.sum() <= 0:
        raise ValueError("counts must record at least one code assignment, got all zeros")
    stages = counts.unsqueeze(0) if counts.ndim == 1 else counts
    figure = new_figure(7.0, 3.6 if stages.shape[0] == 1 else 2.4 * stages.shape[0] + 0.6)
    axes = figure.subplots(stages.shape[0], 1, squeeze=False)[:, 0]
    for index, (ax, row) in enumerate(zip(axes, stages, strict=True)):
        label = None if counts.ndim == 1 else f"stage {index + 1} of {stages.shape[0]}"
        _draw_usage(ax, row, title if index == 0 else None, label)
    return figure


def _draw_usage(ax: Axes, counts: torch.Tensor, title: str | None, stage: str | None) -> None:
    size = counts.shape[0]
    total = counts.sum()
    if total <= 0:  # a stage that quantize dropout left out everywhere
        ax.set_title(f"{stage}: no assignments" if stage else "no assignments")
        ax.set_xlim(-0.5, size - 0.5)
        return
    shares = (counts / total).sort(descending=True).values
    used = int((counts > 0).sum())
    perplexity = float(counts_perplexity(counts))
    ax.bar(range(size), shares.numpy(), width=1.0, color="C0")
    ax.axhline(1 / size, color="C3", linestyle="--", linewidth=1, label=f"uniform (1/{size})")
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_xlabel("code rank (most used first)")
    ax.set_ylabel("share of assignments")
    ax.legend(fontsize="small")
    summary = f"{used}/{size} codes used ({used / size:.0%}), perplexity {perplexity:.1f}"
    if stage:
        summary = f"{stage}: {summary}"
    ax.set_title(f"{title}\n{summary}" if title else f"Code usage: {summary}")
