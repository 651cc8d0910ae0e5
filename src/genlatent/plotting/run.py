"""Every plot of one finished (or running) training run, written into its run directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from genlatent._device import module_device
from genlatent._protocols import declared_keywords
from genlatent.data.batching import TensorBatches
from genlatent.data.dataset import ImageDataset
from genlatent.data.registry import class_names
from genlatent.plotting.codes import plot_code_usage
from genlatent.plotting.curves import plot_loss_curves
from genlatent.plotting.interpolation import latent_interpolation, plot_interpolation
from genlatent.plotting.latent import _TSNE_MAX_POINTS, plot_latent_map
from genlatent.train.build import load_test_set
from genlatent.train.runs import LoadedRun, load_run

__all__ = ["plot_run"]

RUN_PLOTS = ("loss_curves.png", "latent_map.png", "interpolation.png", "code_usage.png")
_BATCH = 500


def _second_image(labels: torch.Tensor) -> int | None:
    """The first index whose label differs from image 0's, else 1, else None."""
    different = (labels != labels[0]).nonzero()
    if different.numel():
        return int(different[0, 0])
    return 1 if labels.shape[0] > 1 else None


def _posterior_means(
    model: torch.nn.Module, test: ImageDataset, device: torch.device
) -> torch.Tensor | None:
    """Posterior means of up to 5000 test images, for a model whose ``encode`` gives a pair."""
    encode = getattr(model, "encode", None)
    if not callable(encode) or "labels" in declared_keywords(encode):
        return None
    count = min(len(test), _TSNE_MAX_POINTS)
    means = []
    for batch in TensorBatches(test.images[:count], batch_size=_BATCH, device=device):
        out = encode(batch.images)
        if not (isinstance(out, tuple) and len(out) == 2 and out[0].is_floating_point()):
            return None
        means.append(out[0].float().cpu().flatten(1))
    return torch.cat(means)


@torch.no_grad()
def plot_run(
    run_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    method: str = "auto",
    test_set: ImageDataset | None = None,
    model: torch.nn.Module | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the plots of a run into its directory and return their paths, by capability.

    - ``loss_curves.png`` from ``metrics.jsonl`` (`plot_loss_curves`);
    - for a model whose ``encode(x)`` returns ``(mean, log_var)`` (a Gaussian latent),
      ``latent_map.png``: the posterior means of up to 5000 test images
      (`plot_latent_map`), and ``interpolation.png``: between the first test image and
      the first one with another label (`latent_interpolation`);
    - for a model whose ``loss`` reports ``code_counts``, ``code_usage.png``: how often
      the test set picks each code (`plot_code_usage`; per stage summed).

    The model is read with `load_run` (``best.pt``, else ``last.pt``); the test split is
    the run's dataset, cut to its ``test_limit``, or ``test_set``. A run on data passed to
    `fit` (which its directory does not store) without ``test_set`` gets the loss curves,
    and ``log`` hears which plots need the data; the run of a prior gets its loss curves.

    Args:
        run_dir: a run directory written by `fit` or `train`.
        data_dir: where the dataset's files are; defaults to the run's ``data_dir``.
        device: where to run the model (``"auto"`` or a torch device string).
        method: the latent map's projection (see `plot_latent_map`).
        test_set: the test images for a run trained on data passed in from Python.
        model: the module for a run of a model passed to `fit` (see `load_run`).
        log: hears of a checkpoint fallback (see `load_run`) and of plots left out.

    Returns:
        The paths written, in the order above.

    Raises:
        RunDirectoryError: if ``run_dir`` holds no run or no checkpoint yet.
        CheckpointError: if the checkpoint cannot be read.
        FileNotFoundError: if the dataset's files are not found.
        ImportError: if matplotlib is not installed.
    """
    loaded = load_run(run_dir, model=model, device=device, log=log)
    written: list[Path] = []
    records = loaded.metrics
    if records:
        written.append(plot_loss_curves(records, loaded.run_dir / "loss_curves.png"))
    if test_set is None:
        config = loaded.config
        if config.dataset == "custom":
            # data passed to fit() is not stored: draw what needs none, say what is left
            if callable(getattr(loaded.model, "encode", None)) and log is not None:
                log(
                    "the latent map, interpolation and code usage need the test images, "
                    "which a run on data passed to fit() does not store: pass them with "
                    "plot_run(..., test_set=...)"
                )
            return written
        test_set = load_test_set(
            config if data_dir is None else config.replace(data_dir=str(data_dir))
        )
    written += _latent_plots(loaded, test_set, method)
    written += _code_usage_plot(loaded, test_set)
    return written


def _latent_plots(loaded: LoadedRun, test: ImageDataset, method: str) -> list[Path]:
    model, path = loaded.model, loaded.run_dir
    device = module_device(model)
    means = _posterior_means(model, test, device)
    if means is None:
        return []
    names = class_names(loaded.config.dataset)
    written = [
        plot_latent_map(
            means, test.labels[: means.shape[0]], path / "latent_map.png", method=method,
            seed=loaded.config.seed, class_names=names,
        )
    ]  # fmt: skip
    other = _second_image(test.labels)
    if other is not None and callable(getattr(model, "decode", None)):
        x_a, x_b = (test.images[i].to(device).float() / 255 for i in (0, other))
        images = latent_interpolation(model, x_a, x_b, steps=10)
        labels = tuple(
            names[int(test.labels[i])] if names else str(int(test.labels[i])) for i in (0, other)
        )
        written.append(
            plot_interpolation(
                images, path / "interpolation.png",
                title=f"Latent interpolation: test image 0 (label {labels[0]}) to "
                f"test image {other} (label {labels[1]})",
            )
        )  # fmt: skip
    return written


def _code_usage_plot(loaded: LoadedRun, test: ImageDataset) -> list[Path]:
    from genlatent.metrics import evaluate_model

    device = module_device(loaded.model)
    result = evaluate_model(loaded.model, TensorBatches(test, batch_size=_BATCH, device=device))
    if result.counts is None:
        return []
    counts = result.counts  # (K,), or (S, K): a panel per residual stage
    title = f"{loaded.config.dataset} test set ({len(test)} images), epoch {loaded.epoch}"
    return [plot_code_usage(counts, loaded.run_dir / "code_usage.png", title=title)]
