"""Presets that rebuild the two reference experiments layer for layer."""

from __future__ import annotations

import torch

from genlatent.models.vae import VAE
from genlatent.models.vqvae import VQVAE
from genlatent.nn.conv import ConvDecoder, ConvEncoder
from genlatent.nn.mlp import MLPDecoder, MLPEncoder
from genlatent.nn.quantize import VectorQuantizer

__all__ = ["cifar10_vqvae", "mnist_vae", "mnist_vqvae"]


def mnist_vae(
    *,
    latent_dim: int = 200,
    hidden_features: tuple[int, ...] = (400, 400),
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> VAE:
    """The reference MNIST VAE: MLP 784-400-400 to a 200-dim Gaussian latent and back.

    LeakyReLU(0.2) activations and a Bernoulli decoder, as in the tutorial; 1,189,984
    parameters with the defaults. Trained with Adam (lr 1e-3), batch 100, 30 epochs.

    Example:
        >>> model = mnist_vae()
        >>> sum(p.numel() for p in model.parameters())
        1189984
    """
    return VAE(
        MLPEncoder(784, hidden_features, latent_dim, device=device, dtype=dtype),
        MLPDecoder(
            latent_dim, hidden_features, 784, out_shape=(1, 28, 28), device=device, dtype=dtype
        ),
    )


def _vqvae(
    image_shape: tuple[int, int, int],
    hidden_channels: int,
    embedding_dim: int,
    codebook_size: int,
    commitment_weight: float,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    quantizer_options: dict[str, object],
) -> VQVAE:
    factory: dict[str, object] = {"device": device, "dtype": dtype}
    in_channels, height, width = image_shape
    return VQVAE(
        ConvEncoder(in_channels, hidden_channels, embedding_dim, **factory),  # type: ignore[arg-type]
        VectorQuantizer(
            codebook_size,
            embedding_dim,
            commitment_weight=commitment_weight,
            **factory,  # type: ignore[arg-type]
            **quantizer_options,  # type: ignore[arg-type]
        ),
        ConvDecoder(embedding_dim, hidden_channels, in_channels, **factory),  # type: ignore[arg-type]
        grid_shape=(height // 4, width // 4),  # two stride-2 convolutions
    )


def cifar10_vqvae(
    *,
    hidden_channels: int = 512,
    embedding_dim: int = 16,
    codebook_size: int = 512,
    commitment_weight: float = 0.25,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **quantizer_options: object,
) -> VQVAE:
    """The reference CIFAR-10 VQ-VAE: 32x32x3 images to an 8x8 grid of 16-dim codes.

    `ConvEncoder` (3 -> 512 -> 16, 6,850,576 parameters), a 512-code `VectorQuantizer`
    with commitment weight 0.25, and the mirrored `ConvDecoder`. Trained with Adam
    (lr 2e-4), batch 128, 50 epochs. Extra keyword arguments go to `VectorQuantizer`
    (for example ``ema=True``).

    Example:
        >>> model = cifar10_vqvae()
        >>> sum(p.numel() for p in model.encoder.parameters())
        6850576
    """
    return _vqvae(
        (3, 32, 32),
        hidden_channels,
        embedding_dim,
        codebook_size,
        commitment_weight,
        device,
        dtype,
        quantizer_options,
    )


def mnist_vqvae(
    *,
    hidden_channels: int = 64,
    embedding_dim: int = 16,
    codebook_size: int = 512,
    commitment_weight: float = 0.25,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **quantizer_options: object,
) -> VQVAE:
    """A reduced-width VQ-VAE for 28x28 greyscale images (7x7 latent grid).

    The reference architecture with one input channel and, by default, 64 hidden channels
    instead of 512, so it trains in minutes on a CPU.

    Example:
        >>> import torch
        >>> mnist_vqvae()(torch.rand(2, 1, 28, 28)).indices.shape
        torch.Size([2, 7, 7])
    """
    return _vqvae(
        (1, 28, 28),
        hidden_channels,
        embedding_dim,
        codebook_size,
        commitment_weight,
        device,
        dtype,
        quantizer_options,
    )
