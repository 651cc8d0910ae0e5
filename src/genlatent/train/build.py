"""Turn a `TrainConfig` into a device, a model and data."""

from __future__ import annotations

import math

import torch

from genlatent.data.dataset import ImageDataset
from genlatent.data.registry import dataset_by_name
from genlatent.models.vae import VAE
from genlatent.models.vqvae import VQVAE
from genlatent.nn.conv import ConvDecoder, ConvEncoder
from genlatent.nn.mlp import MLPDecoder, MLPEncoder
from genlatent.nn.quantize import VectorQuantizer
from genlatent.train.config import TrainConfig

__all__ = ["build_model", "load_datasets", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is checked and returned."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device must be 'auto' or a torch device string, got {name!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here")
    return device


def build_model(config: TrainConfig, image_shape: tuple[int, int, int]) -> VAE | VQVAE:
    """The reference model for ``config`` sized for images of ``image_shape`` (C, H, W).

    ``vae`` on 28x28 greyscale is exactly `mnist_vae`; ``vqvae`` with 512 hidden channels
    on 32x32 colour is exactly `cifar10_vqvae`.
    """
    channels = image_shape[0]
    if config.model == "vae":
        features = math.prod(image_shape)
        hidden = (400, 400)
        return VAE(
            MLPEncoder(features, hidden, config.latent_dim),
            MLPDecoder(config.latent_dim, hidden, features, out_shape=image_shape),
        )
    hidden_channels = config.hidden_channels or (512 if channels == 3 else 64)
    return VQVAE(
        ConvEncoder(channels, hidden_channels, config.embedding_dim),
        VectorQuantizer(
            config.codebook_size,
            config.embedding_dim,
            commitment_weight=config.commitment_weight,
            ema=config.ema,
            restart_dead_codes=config.restart_dead_codes,
        ),
        ConvDecoder(config.embedding_dim, hidden_channels, channels),
    )


def load_datasets(config: TrainConfig) -> tuple[ImageDataset, ImageDataset]:
    """The train and test splits named by ``config``, cut to its limits."""
    if config.dataset == "custom":
        raise ValueError(
            "this run trained on datasets passed to train(datasets=...), which a run "
            "directory does not store: pass them again (train(..., datasets=...), "
            "load_run(..., test_set=...), evaluate_run(..., test_set=...))"
        )
    root, download = config.data_dir, config.download
    train = dataset_by_name(config.dataset, split="train", root=root, download=download)
    test = dataset_by_name(config.dataset, split="test", root=root, download=download)
    return _head(train, config.train_limit), _head(test, config.test_limit)


def _head(data: ImageDataset, limit: int | None) -> ImageDataset:
    if limit is None or limit >= len(data):
        return data
    return ImageDataset(data.images[:limit], data.labels[:limit], name=f"{data.name}[:{limit}]")
