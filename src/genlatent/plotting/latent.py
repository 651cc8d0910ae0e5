"""Two-dimensional maps of a VAE's latent space: PCA (in torch) or t-SNE (scikit-learn)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch

from genlatent._validation import check_floating, check_ndim, check_positive_int, check_tensor
from genlatent.plotting._figure import new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PCA2D", "latent_map_figure", "pca_2d", "plot_latent_map"]

_METHODS = ("auto", "pca", "tsne")
_TSNE_MAX_POINTS = 5000
"""``method="auto"`` uses t-SNE up to this many points, and ``"tsne"`` subsamples to it."""


class PCA2D(NamedTuple):
    """What `pca_2d` returns; ``points @ components + mean`` is the best rank-2 fit of the data."""

    points: torch.Tensor
    """The data in the principal plane, $(N, 2)$."""
    components: torch.Tensor
    """The two principal directions as orthonormal rows, $(2, D)$."""
    mean: torch.Tensor
    """The data mean that was subtracted, $(D,)$."""
    explained_variance_ratio: torch.Tensor
    """Share of the total variance along each direction, $(2,)$, summing to at most 1."""


def pca_2d(x: torch.Tensor) -> PCA2D:
    r"""Project points onto their two principal directions.

    With the centred data $X_c = X - \bar{x}$ and its thin SVD $X_c = U S V^\top$, the
    directions are the first two rows of $V^\top$ and the coordinates are $X_c V_{:, :2}$.
    Each direction's sign is fixed so that its largest-magnitude entry is positive, which
    makes the result deterministic. One-dimensional data gets a zero second coordinate.
    Computed in float64, returned in the input's dtype (float32 for half types).

    Args:
        x: $N \ge 2$ points of dimension $D$.

    Returns:
        A `PCA2D` of coordinates, directions, mean and explained-variance ratios.

    Raises:
        TypeError: if ``x`` is not a floating-point tensor.
        ValueError: if ``x`` is not 2-D or holds fewer than two points.

    Shape:
        - x: $(N, D)$
        - points: $(N, 2)$; components: $(2, D)$; mean: $(D,)$

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [0.0, 1.0, 1.0], [2.0, 1.0, 1.0]])
        >>> pca = pca_2d(x)
        >>> pca.points.shape, pca.explained_variance_ratio
        (torch.Size([4, 2]), tensor([0.8000, 0.2000]))
        >>> torch.allclose(pca.points @ pca.components + pca.mean, x)
        True
    """
    check_floating("x", x)
    check_ndim("x", x, (2,), "(N, D)")
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 points, got shape {tuple(x.shape)}")
    out_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    data = x.detach().to("cpu", torch.float64)  # float64 on the CPU: not on MPS
    mean = data.mean(dim=0)
    centred = data - mean
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    components = torch.zeros(2, x.shape[1], dtype=torch.float64)
    variance = torch.zeros(2, dtype=torch.float64)
    k = min(2, vh.shape[0])
    components[:k] = vh[:k]
    variance[:k] = singular[:k] ** 2
    biggest = components.abs().argmax(dim=1, keepdim=True)
    signs = components.gather(1, biggest).sign()
    components = components * torch.where(signs == 0, 1.0, signs)
    total = (singular**2).sum()
    ratio = variance / total if total > 0 else torch.zeros_like(variance)
    return PCA2D(
        (centred @ components.T).to(x.device, out_dtype),
        components.to(x.device, out_dtype),
        mean.to(x.device, out_dtype),
        ratio.to(x.device, out_dtype),
    )


def _sklearn_available() -> bool:
    try:
        import sklearn.manifold  # noqa: F401
    except ImportError:
        return False
    return True


def _tsne(x: torch.Tensor, seed: int) -> torch.Tensor:
    try:
        from sklearn.manifold import TSNE
    except ImportError as error:
        raise ImportError(
            "method='tsne' needs scikit-learn, which is not installed: "
            "pip install 'genlatent[demo]' (or use method='pca')"
        ) from error
    n = x.shape[0]
    # perplexity must stay below the number of points; 30 is sklearn's default
    perplexity = min(30.0, max(1.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    embedded = tsne.fit_transform(x.detach().cpu().to(torch.float64).numpy())
    return torch.from_numpy(embedded).float()


def _subsample(n: int, limit: int, seed: int) -> torch.Tensor | None:
    """Sorted indices of ``limit`` of ``n`` points, drawn with a fixed seed; None if n <= limit."""
    if n <= limit:
        return None
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:limit].sort().values


def plot_latent_map(
    means: torch.Tensor,
    labels: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    method: str = "auto",
    max_points: int = _TSNE_MAX_POINTS,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> Path:
    """Scatter posterior means in 2-D, coloured by class.

    ``"pca"`` projects with `pca_2d`; ``"tsne"`` embeds with scikit-learn's t-SNE
    (seeded by ``seed``, at most `_TSNE_MAX_POINTS` points); ``"auto"`` uses t-SNE when
    scikit-learn is installed and there are at most `_TSNE_MAX_POINTS` points, PCA
    otherwise. More than ``max_points`` points are subsampled with a fixed seed, the same
    subset on every call. Up to 10 classes get a legend, more get a colorbar.

    Args:
        means: posterior means $\\mu$ of $N \\ge 2$ examples.
        labels: integer class of each example.
        path: where the PNG goes.
        method: ``"auto"``, ``"pca"`` or ``"tsne"``.
        max_points: the most points drawn.
        class_names: legend names indexed by label (e.g. ``CIFAR10_CLASSES``).
        seed: seeds the subsample and t-SNE.

    Returns:
        ``path`` as a `Path`.

    Raises:
        TypeError: if ``means`` is not floating point or ``labels`` is not an integer tensor.
        ValueError: on bad shapes, mismatched counts, fewer than 2 points or an unknown
            ``method``.
        ImportError: if matplotlib (or, for ``"tsne"``, scikit-learn) is missing.

    Shape:
        - means: $(N, D)$
        - labels: $(N,)$

    Example:
        >>> import tempfile, pathlib, torch
        >>> means, labels = torch.randn(50, 8), torch.arange(50) % 10
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     plot_latent_map(means, labels, pathlib.Path(folder) / "map.png", method="pca").name
        'map.png'
    """
    figure = latent_map_figure(
        means, labels, method=method, max_points=max_points, class_names=class_names, seed=seed
    )
    return save_png(figure, path)


def latent_map_figure(
    means: torch.Tensor,
    labels: torch.Tensor,
    *,
    method: str = "auto",
    max_points: int = _TSNE_MAX_POINTS,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> Figure:
    """The figure `plot_latent_map` writes: the 2-D points, one scatter per class.

    With at most 10 classes, ``axes[0].collections`` holds one scatter per class (in label
    order, named by ``class_names`` or the label); with more, one scatter coloured by
    label and a colorbar.

    Args:
        means: posterior means $\\mu$ of $N \\ge 2$ examples.
        labels: integer class of each example.
        method: ``"auto"``, ``"pca"`` or ``"tsne"`` (as `plot_latent_map`).
        max_points: the most points drawn.
        class_names: legend names indexed by label (e.g. ``CIFAR10_CLASSES``).
        seed: seeds the subsample and t-SNE.

    Returns:
        A `matplotlib.figure.Figure`, drawn by Agg (no pyplot state).

    Raises:
        TypeError: if ``means`` is not floating point or ``labels`` is not an integer tensor.
        ValueError: on bad shapes, mismatched counts, fewer than 2 points or an unknown
            ``method``.
        ImportError: if matplotlib (or, for ``"tsne"``, scikit-learn) is missing.

    Shape:
        - means: $(N, D)$
        - labels: $(N,)$

    Example:
        >>> import torch
        >>> means, labels = torch.randn(50, 8), torch.arange(50) % 10
        >>> figure = latent_map_figure(means, labels, method="pca")
        >>> [len(points.get_offsets()) for points in figure.axes[0].collections]
        [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]
    """
    check_floating("means", means)
    check_ndim("means", means, (2,), "(N, D)")
    check_tensor("labels", labels)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    check_ndim("labels", labels, (1,), "(N,)")
    if labels.shape[0] != means.shape[0]:
        raise ValueError(
            f"means and labels must hold the same number of points, "
            f"got {means.shape[0]} means and {labels.shape[0]} labels"
        )
    if means.shape[0] < 2:
        raise ValueError(f"means must hold at least 2 points, got shape {tuple(means.shape)}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    check_positive_int("max_points", max_points)

    n, dim = means.shape
    if method == "auto":
        method = "tsne" if n <= _TSNE_MAX_POINTS and _sklearn_available() else "pca"
    limit = min(max_points, _TSNE_MAX_POINTS) if method == "tsne" else max_points
    keep = _subsample(n, limit, seed)
    labels = labels.detach().cpu()
    if method == "tsne":
        if keep is not None:
            means, labels = means[keep], labels[keep]
        points = _tsne(means, seed)
        subtitle = "t-SNE"
        axis = "t-SNE"
    else:
        pca = pca_2d(means)
        points = pca.points.detach().float().cpu()
        if keep is not None:
            points, labels = points[keep], labels[keep]
        share = float(pca.explained_variance_ratio.sum())
        subtitle = f"PCA, {share:.0%} of the variance"
        axis = "PC"

    figure = new_figure(6.4, 5.2)
    ax = figure.subplots()
    xy = points.numpy()
    classes = labels.unique().tolist()
    size = 6 if len(xy) > 1000 else 14
    if len(classes) <= 10:
        for index, label in enumerate(classes):
            mask = (labels == label).numpy()
            name = class_names[label] if class_names is not None else str(label)
            ax.scatter(xy[mask, 0], xy[mask, 1], s=size, alpha=0.7, color=f"C{index}", label=name)
        ax.legend(title="class", markerscale=2, fontsize="small", loc="best")
    else:
        scatter = ax.scatter(
            xy[:, 0], xy[:, 1], s=size, alpha=0.7, c=labels.numpy(), cmap="viridis"
        )
        figure.colorbar(scatter, ax=ax, label="class")
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    shown = f"{len(xy)} of {n}" if len(xy) < n else f"{n}"
    ax.set_title(f"Posterior means, {dim}-D latent ({subtitle}; {shown} points)")
    return figure
