"""Presets that rebuild the two reference experiments layer for layer."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from genlatent.functional.likelihood import decoder_channels
from genlatent.models.cvae import ConditionalVAE
from genlatent.models.vae import VAE, VampPrior
from genlatent.models.vqvae import VQVAE
from genlatent.nn.conv import ConvDecoder, ConvEncoder
from genlatent.nn.fsq import FSQ
from genlatent.nn.lfq import LFQ
from genlatent.nn.mlp import MLPDecoder, MLPEncoder
from genlatent.nn.quantize import VectorQuantizer
from genlatent.nn.residual import ResidualVQ
from genlatent.pretrained import PretrainedMixin

__all__ = [
    "cifar10_vqvae",
    "conditional_vae",
    "conv_vae",
    "mnist_vae",
    "mnist_vqvae",
    "preset",
]


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
    image_shape: tuple[int, ...],
    hidden_channels: int,
    embedding_dim: int,
    quantizer: nn.Module,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    stages: tuple[int, ...] = (),
) -> VQVAE:
    """The reference conv encoder and decoder around ``quantizer``.

    Two stride-2 convolutions give an $(H/4, W/4)$ grid; ``stages`` appends the stage dim
    of a multi-stage quantizer, so that `VQVAE.sample` draws one code per position and stage.
    """
    in_channels, height, width = image_shape
    return VQVAE(
        ConvEncoder(in_channels, hidden_channels, embedding_dim, device=device, dtype=dtype),
        quantizer,  # type: ignore[arg-type]
        ConvDecoder(embedding_dim, hidden_channels, in_channels, device=device, dtype=dtype),
        grid_shape=(height // 4, width // 4, *stages),
    )


def _reference_vqvae(
    image_shape: tuple[int, int, int],
    hidden_channels: int,
    embedding_dim: int,
    codebook_size: int,
    commitment_weight: float,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    quantizer_options: dict[str, Any],
) -> VQVAE:
    quantizer = VectorQuantizer(
        codebook_size, embedding_dim, commitment_weight=commitment_weight, device=device,
        dtype=dtype, **quantizer_options,
    )  # fmt: skip
    return _vqvae(
        image_shape, hidden_channels, embedding_dim, quantizer, device=device, dtype=dtype
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
    return _reference_vqvae(
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
    return _reference_vqvae(
        (1, 28, 28),
        hidden_channels,
        embedding_dim,
        codebook_size,
        commitment_weight,
        device,
        dtype,
        quantizer_options,
    )


def conditional_vae(
    image_shape: tuple[int, ...], num_classes: int | None, *, latent_dim: int = 8
) -> ConditionalVAE:
    """A class-conditional MLP VAE (400-400, LeakyReLU(0.2), Bernoulli) for ``image_shape``.

    `ConditionalVAE.mlp` with an 8-dim latent: small enough that the decoder takes the
    class from the label rather than from $z$ (on MNIST after 10 epochs, 94.2% of its
    samples are classified as the class asked for; see the results page). Train it from
    the command line with
    ``genlatent train --model genlatent.models.presets:conditional_vae --dataset mnist``;
    the trainer passes the labels and draws one row of samples per class.

    Raises:
        ValueError: if ``num_classes`` is ``None`` (unlabelled data).

    Example:
        >>> model = conditional_vae((1, 28, 28), 10)
        >>> model.sample(2, labels=torch.tensor([3, 4])).shape
        torch.Size([2, 1, 28, 28])
    """
    if num_classes is None:
        raise ValueError("a conditional VAE needs labelled data (num_classes is None)")
    return ConditionalVAE.mlp(image_shape, num_classes, latent_dim=latent_dim)


class _ConvPosterior(nn.Module, PretrainedMixin):
    """`ConvEncoder` to a 16-channel grid, flattened, then linear heads to ``(mean, log_var)``."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: int, latent_dim: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.features = ConvEncoder(channels, hidden, _GRID_CHANNELS)
        flat = _GRID_CHANNELS * (height // 4) * (width // 4)
        self.mean_head = nn.Linear(flat, latent_dim)
        self.log_var_head = nn.Linear(flat, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return self.mean_head(h), self.log_var_head(h)


class _ConvLikelihood(nn.Module, PretrainedMixin):
    """$z$ linearly to a 16-channel grid, then `ConvDecoder` to the likelihood's channels."""

    def __init__(
        self, image_shape: tuple[int, int, int], hidden: int, latent_dim: int, out_channels: int
    ) -> None:
        super().__init__()
        _, height, width = image_shape
        self.latent_dim = latent_dim
        self.grid = (_GRID_CHANNELS, height // 4, width // 4)
        self.project = nn.Linear(latent_dim, math.prod(self.grid))
        self.layers = ConvDecoder(_GRID_CHANNELS, hidden, out_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.project(z).unflatten(1, self.grid))


_GRID_CHANNELS = 16


def conv_vae(
    image_shape: tuple[int, ...] = (3, 32, 32),
    *,
    latent_dim: int = 128,
    hidden_channels: int = 128,
    num_mixtures: int = 5,
) -> VAE:
    r"""A convolutional VAE for 8-bit images (CIFAR-10 by default), discretized logistic likelihood.

    The reference conv encoder (`ConvEncoder`, ``hidden_channels`` wide, to a 16-channel
    $H/4 \times W/4$ grid) flattened to linear heads for a ``latent_dim`` Gaussian posterior; the
    decoder maps $z$ linearly back to the grid and through the mirrored `ConvDecoder` to
    the $3M$ parameters per value of a mixture of $M$ = ``num_mixtures``
    discretized logistics per channel (PixelCNN++, channels independent), the likelihood
    for 8-bit images. The loss is in nats per image; divide by $C H W \ln 2$ (3072 ln 2
    for CIFAR-10) for the bits per dimension that the literature reports. Train it with
    ``genlatent train --model genlatent.models.presets:conv_vae --dataset cifar10`` (the
    trainer passes the data's ``image_shape``).

    Raises:
        ValueError: if ``image_shape`` is not ``(C, H, W)`` with $H$ and $W$ multiples of 4.

    Example:
        >>> model = conv_vae(latent_dim=8, hidden_channels=16)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> model.loss(x).loss.shape, model.sample(2).shape
        (torch.Size([]), torch.Size([2, 3, 32, 32]))
    """
    if len(image_shape) != 3 or image_shape[1] % 4 or image_shape[2] % 4:
        raise ValueError(
            f"image_shape must be (C, H, W) with H and W multiples of 4, got {tuple(image_shape)}"
        )
    shape = (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))
    out = decoder_channels("discretized_logistic", shape[0], num_mixtures=num_mixtures)
    return VAE(
        _ConvPosterior(shape, hidden_channels, latent_dim),
        _ConvLikelihood(shape, hidden_channels, latent_dim, out),
        latent_dim=latent_dim,
        likelihood="discretized_logistic",
        num_mixtures=num_mixtures,
    )


_ACTIVATIONS = ("leaky_relu", "tanh", "relu")  # by name, so that save_pretrained can save them


def _vae_for(
    image_shape: tuple[int, int, int],
    *,
    latent_dim: int = 200,
    hidden: str | None = None,
    activation: str = "leaky_relu",
    likelihood: str = "bernoulli",
    vamp_components: int | None = None,
    **_: object,
) -> VAE:
    features = image_shape[0] * image_shape[1] * image_shape[2]
    widths = tuple(int(width) for width in (hidden or "400,400").split(","))
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    act = activation
    prior = None if vamp_components is None else VampPrior(vamp_components, image_shape)
    return VAE(
        MLPEncoder(features, widths, latent_dim, activation=act),
        MLPDecoder(latent_dim, widths, features, out_shape=image_shape, activation=act),
        likelihood=likelihood,
        prior=prior,
    )


_VQ_OPTIONS = ("ema", "restart_dead_codes", "distance", "gradient", "init")


def _quantizer(
    kind: str,
    embedding_dim: int,
    codebook_size: int,
    commitment_weight: float,
    levels: str | None,
    num_quantizers: int,
    options: dict[str, object],
) -> nn.Module:
    """The quantizer ``kind`` names (``"vq"``, ``"fsq"``, ``"lfq"``, ``"rvq"``) for the preset."""
    if kind == "fsq":
        parsed = [int(level) for level in (levels or "8,5,5,5").split(",")]
        return FSQ(parsed, dim=embedding_dim)
    if kind == "lfq":
        return LFQ(codebook_size, dim=embedding_dim, commitment_weight=commitment_weight)
    vq: dict[str, Any] = {k: v for k, v in options.items() if k in _VQ_OPTIONS}
    if kind == "rvq":
        return ResidualVQ(
            num_quantizers, codebook_size, embedding_dim, commitment_weight=commitment_weight, **vq
        )
    return VectorQuantizer(codebook_size, embedding_dim, commitment_weight=commitment_weight, **vq)


def _vqvae_for(
    image_shape: tuple[int, int, int],
    *,
    hidden_channels: int | None = None,
    embedding_dim: int = 16,
    codebook_size: int = 512,
    commitment_weight: float = 0.25,
    quantizer: str = "vq",
    levels: str | None = None,
    num_quantizers: int = 4,
    **quantizer_options: object,
) -> VQVAE:
    width = hidden_channels or (512 if image_shape[0] == 3 else 64)
    chosen = _quantizer(
        quantizer, embedding_dim, codebook_size, commitment_weight, levels, num_quantizers,
        quantizer_options,
    )  # fmt: skip
    stages = (num_quantizers,) if quantizer == "rvq" else ()
    return _vqvae(image_shape, width, embedding_dim, chosen, stages=stages)


_PRESETS: dict[str, Callable[..., nn.Module]] = {"vae": _vae_for, "vqvae": _vqvae_for}


def preset(name: str, image_shape: tuple[int, int, int], **options: object) -> nn.Module:
    """The reference model ``name`` (``"vae"`` or ``"vqvae"``) sized for ``image_shape``.

    ``"vae"``: the MLP VAE (``hidden`` widths, default ``"400,400"``, ``latent_dim``,
    ``activation`` ``"leaky_relu"``, ``"tanh"`` or ``"relu"``, ``likelihood``, and a
    `VampPrior` of ``vamp_components`` pseudo-inputs when given); with the defaults on
    $(1, 28, 28)$ it is exactly `mnist_vae`, and ``hidden="200,200", latent_dim=50,
    activation="tanh"`` is the one-stochastic-layer model of Burda et al. (2016).
    ``"vqvae"``: the conv VQ-VAE (``hidden_channels``, default 512 for colour
    and 64 for greyscale, ``embedding_dim``, ``codebook_size``, ``commitment_weight``, and
    the quantizer: ``quantizer="vq"`` (`VectorQuantizer` with ``ema``,
    ``restart_dead_codes``, ``distance``, ``gradient``, ``init``), ``"fsq"`` (`FSQ` with
    ``levels``, e.g. ``"8,5,5,5"``, projected from ``embedding_dim``), ``"lfq"`` (`LFQ`
    with ``codebook_size`` codes) or ``"rvq"`` (`ResidualVQ` of ``num_quantizers`` stages,
    with the VQ options); with ``"vq"`` on $(3, 32, 32)$ and 512 channels it is exactly
    `cifar10_vqvae`. Options that do not apply to ``name`` are ignored.

    Raises:
        ValueError: if ``name`` is not a preset.

    Example:
        >>> sum(p.numel() for p in preset("vae", (1, 28, 28)).parameters())
        1189984
    """
    if name not in _PRESETS:
        raise ValueError(f"preset must be one of {tuple(_PRESETS)}, got {name!r}")
    return _PRESETS[name](tuple(image_shape), **options)
