"""Every plot of one finished (or running) training run, written into its run directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import torch

from genlatent.data.dataset import ImageDataset
from genlatent.data.registry import dataset_by_name
from genlatent.models.vae import VAE
from genlatent.models.vqvae import VQVAE
from genlatent.nn.quantize import VectorQuantizer
from genlatent.plotting.codes import plot_code_usage
from genlatent.plotting.curves import plot_loss_curves
from genlatent.plotting.interpolation import latent_interpolation, plot_interpolation
from genlatent.plotting.latent import TSNE_MAX_POINTS, plot_latent_map
from genlatent.train.build import build_model, resolve_device
from genlatent.train.checkpoint import load_checkpoint
from genlatent.train.config import TrainConfig
from genlatent.train.rundir import RunDirectory, RunDirectoryError

__all__ = ["RUN_PLOTS", "plot_run"]

RUN_PLOTS = ("loss_curves.png", "latent_map.png", "interpolation.png", "code_usage.png")
"""The files `plot_run` may write."""

_BATCH = 500


def _test_set(config: TrainConfig, data_dir: str | os.PathLike[str] | None) -> ImageDataset:
    data = dataset_by_name(
        config.dataset, split="test", root=data_dir if data_dir is not None else config.data_dir
    )
    limit = config.test_limit
    if limit is None or limit >= len(data):
        return data
    return ImageDataset(data.images[:limit], data.labels[:limit], name=f"{data.name}[:{limit}]")


def _batches(images: torch.Tensor, device: torch.device) -> Iterator[torch.Tensor]:
    for start in range(0, images.shape[0], _BATCH):
        yield images[start : start + _BATCH].to(device).float() / 255


def _second_image(labels: torch.Tensor) -> int | None:
    """The first index whose label differs from image 0's, else 1, else None."""
    different = (labels != labels[0]).nonzero()
    if different.numel():
        return int(different[0, 0])
    return 1 if labels.shape[0] > 1 else None


@torch.no_grad()
def plot_run(
    run_dir: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    method: str = "auto",
) -> list[Path]:
    """Write the plots of a run into its directory and return their paths.

    - ``loss_curves.png`` from ``metrics.jsonl`` (`plot_loss_curves`);
    - for a VAE, ``latent_map.png``: the posterior means of up to 5000 test images
      (`plot_latent_map`), and ``interpolation.png``: between the first test image and
      the first one with another label (`latent_interpolation`);
    - for a VQ-VAE, ``code_usage.png``: how often the test set picks each code
      (`plot_code_usage`).

    The model is rebuilt from ``config.json`` with `build_model` and loaded from
    ``checkpoints/best.pt`` (``last.pt`` when there is no best); the test split is the
    run's dataset, cut to its ``test_limit``.

    Args:
        run_dir: a run directory written by `genlatent.train.runner.train`.
        data_dir: where the dataset's files are; defaults to the run's ``data_dir``.
        device: where to run the model (``"auto"`` or a torch device string).
        method: the latent map's projection (see `plot_latent_map`).

    Returns:
        The paths written, in the order above.

    Raises:
        RunDirectoryError: if ``run_dir`` holds no run or no checkpoint yet.
        CheckpointError: if the checkpoint cannot be read.
        FileNotFoundError: if the dataset's files are not found.
        ImportError: if matplotlib is not installed.
    """
    run = RunDirectory(run_dir)
    config = run.read_config()
    checkpoint = run.best_checkpoint if run.best_checkpoint.is_file() else run.last_checkpoint
    if not checkpoint.is_file():
        raise RunDirectoryError(
            f"{run.path} has no checkpoint yet (no checkpoints/best.pt or checkpoints/last.pt): "
            "plot it after its first epoch"
        )
    written: list[Path] = []
    records = run.read_metrics()
    if records:
        written.append(plot_loss_curves(records, run.path / "loss_curves.png"))

    target = resolve_device(device)
    state = load_checkpoint(checkpoint, map_location="cpu")
    test = _test_set(config, data_dir)
    model = build_model(config, test.image_shape)
    model.load_state_dict(state["model"])
    model.to(target).eval()

    if isinstance(model, VAE):
        count = min(len(test), TSNE_MAX_POINTS)
        means = torch.cat(
            [model.encode(x)[0].float().cpu() for x in _batches(test.images[:count], target)]
        )
        written.append(
            plot_latent_map(
                means, test.labels[:count], run.path / "latent_map.png", method=method,
                seed=config.seed,
            )
        )  # fmt: skip
        other = _second_image(test.labels)
        if other is not None:
            x_a, x_b = (test.images[i].to(target).float() / 255 for i in (0, other))
            images = latent_interpolation(model, x_a, x_b, steps=10)
            labels = (int(test.labels[0]), int(test.labels[other]))
            written.append(
                plot_interpolation(
                    images, run.path / "interpolation.png",
                    title=f"Latent interpolation: test image 0 (label {labels[0]}) to "
                    f"test image {other} (label {labels[1]})",
                )
            )  # fmt: skip
    elif isinstance(model, VQVAE):
        size = cast(VectorQuantizer, model.quantizer).codebook_size
        counts = torch.zeros(size, dtype=torch.int64)
        for x in _batches(test.images, target):
            indices: torch.Tensor = model.encode(x)
            counts += torch.bincount(indices.flatten().cpu(), minlength=size)
        written.append(
            plot_code_usage(
                counts, run.path / "code_usage.png",
                title=f"{config.dataset} test set ({len(test)} images), epoch {state['epoch']}",
            )
        )  # fmt: skip
    return written
