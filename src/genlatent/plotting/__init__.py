"""Plots of training runs and latent spaces (the ``plot`` extra: matplotlib).

matplotlib is imported only when a plot is drawn, so this package imports without it;
drawing without it raises ``ImportError`` with the install command. Figures are drawn by
the non-interactive Agg canvas and never touch pyplot's global state.
"""

from __future__ import annotations

from genlatent.plotting.codes import code_usage_figure, plot_code_usage
from genlatent.plotting.curves import loss_curves_figure, plot_loss_curves
from genlatent.plotting.interpolation import (
    interpolation_figure,
    latent_interpolation,
    plot_interpolation,
)
from genlatent.plotting.latent import PCA2D, latent_map_figure, pca_2d, plot_latent_map
from genlatent.plotting.run import plot_run

__all__ = [
    "PCA2D",
    "code_usage_figure",
    "interpolation_figure",
    "latent_interpolation",
    "latent_map_figure",
    "loss_curves_figure",
    "pca_2d",
    "plot_code_usage",
    "plot_interpolation",
    "plot_latent_map",
    "plot_loss_curves",
    "plot_run",
]
