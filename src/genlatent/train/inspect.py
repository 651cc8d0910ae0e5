"""Load a finished run back: evaluate it, sample from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from genlatent.data.batching import TensorBatches
from genlatent.data.dataset import ImageDataset
from genlatent.models.vae import VAE
from genlatent.models.vqvae import VQVAE
from genlatent.train.build import build_model, load_datasets, resolve_device
from genlatent.train.checkpoint import load_latest_checkpoint
from genlatent.train.config import TrainConfig
from genlatent.train.images import save_image_grid
from genlatent.train.rundir import RunDirectory
from genlatent.train.runner import sample_images

__all__ = ["evaluate_run", "load_run", "sample_run"]


def load_run(
    run_dir: str | os.PathLike[str],
    *,
    checkpoint: str = "best",
    data_dir: str | None = None,
    device: str | None = None,
    test_set: ImageDataset | None = None,
) -> tuple[TrainConfig, VAE | VQVAE, ImageDataset]:
    """The run's config, its model with the chosen checkpoint's weights, and its test set.

    ``checkpoint`` is ``"best"`` (lowest test loss) or ``"last"``; a missing or unreadable
    file falls back to the one kept before it. The model is in eval mode. ``test_set``
    replaces the dataset named in the config (needed for ``dataset="custom"`` runs).
    """
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    run = RunDirectory(run_dir)
    config = run.read_config()
    if data_dir is not None:
        config = config.replace(data_dir=data_dir)
    if device is not None:
        config = config.replace(device=device)
    target = resolve_device(config.device)
    path = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    if not path.exists():
        path = run.last_checkpoint
    state, _ = load_latest_checkpoint(path, map_location=target)
    if test_set is None:
        _, test_set = load_datasets(config)
    model = build_model(config, test_set.image_shape).to(target)
    model.load_state_dict(state["model"])
    return config, model.eval(), test_set


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    iwae_k: int = 0,
    checkpoint: str = "best",
    data_dir: str | None = None,
    test_set: ImageDataset | None = None,
) -> dict[str, Any]:
    """Test-set metrics: negative ELBO (and IWAE) for a VAE, MSE, PSNR and usage for a VQ-VAE."""
    from genlatent.metrics import (
        VAEEvaluation,
        VQVAEEvaluation,
        evaluate_vae,
        evaluate_vqvae,
    )

    config, model, test_set = load_run(
        run_dir, checkpoint=checkpoint, data_dir=data_dir, test_set=test_set
    )
    device = next(model.parameters()).device
    batches = TensorBatches(test_set, batch_size=500 if iwae_k == 0 else 100, device=device)
    result: VAEEvaluation | VQVAEEvaluation
    if isinstance(model, VAE):
        generator = torch.Generator(device=device).manual_seed(config.seed)
        result = evaluate_vae(model, batches, iwae_samples=iwae_k, generator=generator)
    else:
        result = evaluate_vqvae(model, batches)
    values = {k: v for k, v in _as_dict(result).items() if isinstance(v, (int, float))}
    return {"examples": len(test_set), **values}


def sample_run(
    run_dir: str | os.PathLike[str],
    num: int,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    checkpoint: str = "best",
) -> Path:
    """Decode ``num`` samples of a run's model into an image grid at ``out``."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive int, got {num!r}")
    _, model, test_set = load_run(run_dir, checkpoint=checkpoint)
    device = next(model.parameters()).device
    like = test_set.images[:1].to(device).float() / 255
    with torch.no_grad():
        images = sample_images(
            model, num, like=like, generator=torch.Generator(device=device).manual_seed(seed)
        )
    return save_image_grid(images, out, scale=max(1, 64 // like.shape[-1]))


def _as_dict(result: Any) -> dict[str, Any]:
    if hasattr(result, "_asdict"):
        return dict(result._asdict())
    if hasattr(result, "__dataclass_fields__"):
        return {name: getattr(result, name) for name in result.__dataclass_fields__}
    return dict(result)
