"""Presets that rebuild the two reference experiments layer for layer."""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from genlatent._options import parameter_options
from genlatent._validation import check_non_negative_float
from genlatent.functional.likelihood import decoder_channels
from genlatent.losses.perceptual import PerceptualLoss
from genlatent.models.cvae import ConditionalVAE
from genlatent.models.quantizers import build_quantizer, quantizer_stages
from genlatent.models.tokenizer import Tokenizer
from genlatent.models.vae import VAE, VampPrior
from genlatent.models.vqvae import VQVAE
from genlatent.nn.conv import ConvDecoder, ConvEncoder
from genlatent.nn.discriminator import PatchDiscriminator
from genlatent.nn.lenet import ClassifierFeatureMaps
from genlatent.nn.mlp import MLPDecoder, MLPEncoder
from genlatent.pretrained import PretrainedMixin

__all__ = [
    "cifar10_vqvae",
    "conditional_vae",
    "conv_vae",
    "mnist_vae",
    "mnist_vqvae",
    "preset",
    "tokenizer_preset",
    "vae_preset",
    "vqvae_preset",
]


def mnist_vae(
    *,
    latent_dim: int = 200,
    hidden_features: tuple[int, ...] = (400, 400),
    output_bias_init: OutputBiasInit = "mean",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> VAE:
    """The reference MNIST VAE: MLP 784-400-400 to a 200-dim Gaussian latent and back.

    LeakyReLU(0.2) activations and a Bernoulli decoder, as in the tutorial; 1,189,984
    parameters with the defaults: `vae_preset` on $(1, 28, 28)$. Trained with Adam
    (lr 1e-3), batch 100, 30 epochs. ``output_bias_init`` as in `vae_preset`.

    Example:
        >>> model = mnist_vae()
        >>> sum(p.numel() for p in model.parameters())
        1189984
    """
    widths = _widths(hidden_features, name="hidden_features", text=False)
    model = vae_preset(
        (1, 28, 28), latent_dim=latent_dim, hidden=widths, output_bias_init=output_bias_init
    )
    return model.to(device=device, dtype=dtype)


def cifar10_vqvae(
    *,
    hidden_channels: int = 512,
    embedding_dim: int = 16,
    codebook_size: int = 512,
    commitment_weight: float = 0.25,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **quantizer_options: Any,
) -> VQVAE:
    """The reference CIFAR-10 VQ-VAE: 32x32x3 images to an 8x8 grid of 16-dim codes.

    `ConvEncoder` (3 -> 512 -> 16, 6,850,576 parameters), a 512-code `VectorQuantizer`
    with commitment weight 0.25, and the mirrored `ConvDecoder`: `vqvae_preset` on
    $(3, 32, 32)$. Trained with Adam (lr 2e-4), batch 128, 50 epochs. Extra keyword
    arguments are options of the ``"vq"`` quantizer (for example ``ema=True``).

    Example:
        >>> model = cifar10_vqvae()
        >>> sum(p.numel() for p in model.encoder.parameters())
        6850576
    """
    model = vqvae_preset(
        (3, 32, 32), hidden_channels=hidden_channels, embedding_dim=embedding_dim,
        codebook_size=codebook_size, commitment_weight=commitment_weight, **quantizer_options,
    )  # fmt: skip
    return model.to(device=device, dtype=dtype)


def mnist_vqvae(
    *,
    hidden_channels: int = 64,
    embedding_dim: int = 16,
    codebook_size: int = 512,
    commitment_weight: float = 0.25,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **quantizer_options: Any,
) -> VQVAE:
    """A reduced-width VQ-VAE for 28x28 greyscale images (7x7 latent grid).

    The reference architecture with one input channel and, by default, 64 hidden channels
    instead of 512, so it trains in minutes on a CPU: `vqvae_preset` on $(1, 28, 28)$.

    Example:
        >>> import torch
        >>> mnist_vqvae()(torch.rand(2, 1, 28, 28)).indices.shape
        torch.Size([2, 7, 7])
    """
    model = vqvae_preset(
        (1, 28, 28), hidden_channels=hidden_channels, embedding_dim=embedding_dim,
        codebook_size=codebook_size, commitment_weight=commitment_weight, **quantizer_options,
    )  # fmt: skip
    return model.to(device=device, dtype=dtype)


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


Activation = Literal["leaky_relu", "tanh", "relu"]
Likelihood = Literal["bernoulli", "continuous_bernoulli", "gaussian"]
OutputBiasInit = Literal["mean", "zero"]

_ACTIVATIONS: tuple[str, ...] = typing.get_args(Activation)  # names: save_pretrained saves them


def vae_preset(
    image_shape: tuple[int, ...] = (1, 28, 28),
    *,
    latent_dim: int = 200,
    hidden: tuple[int, ...] = (400, 400),
    activation: Activation = "leaky_relu",
    likelihood: Likelihood = "bernoulli",
    vamp_components: int | None = None,
    output_bias_init: OutputBiasInit = "mean",
) -> VAE:
    """The reference MLP VAE sized for ``image_shape``: the ``vae`` of ``genlatent train``.

    With the defaults on $(1, 28, 28)$ it is the tutorial's MNIST VAE (`mnist_vae`);
    ``hidden=(200, 200), latent_dim=50, activation="tanh"`` is the one-stochastic-layer
    model of Burda et al. (2016).

    Args:
        image_shape: one example's shape $(C, H, W)$.
        latent_dim: latent size.
        hidden: hidden widths, e.g. 200,200.
        activation: activation between layers, leaky_relu (0.2, the tutorial's), tanh or relu.
        likelihood: decoder likelihood, bernoulli, continuous_bernoulli or gaussian.
        vamp_components: a VampPrior with this many pseudo-inputs instead of N(0, I).
        output_bias_init: the decoder's output bias at the start of training, mean (the
            parameters of the training data's mean pixel, as Burda et al. start theirs) or
            zero.

    Example:
        >>> vae_preset((1, 28, 28), hidden="200,200", latent_dim=50).latent_dim
        50
    """
    shape = _image_shape(image_shape)
    features = math.prod(shape)
    widths = _widths(hidden)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    act = activation
    prior = None if vamp_components is None else VampPrior(vamp_components, shape)
    return VAE(
        MLPEncoder(features, widths, latent_dim, activation=act),
        MLPDecoder(latent_dim, widths, features, out_shape=shape, activation=act),
        likelihood=likelihood,
        prior=prior,
        output_bias_init=output_bias_init,
    )


def _image_shape(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
    return (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))


def _widths(hidden: object, name: str = "hidden", text: bool = True) -> tuple[int, ...]:
    """Hidden widths from a sequence (or, with ``text``, the command line's ``"200,200"``)."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if isinstance(hidden, str) and text:
        parts: list[Any] = hidden.split(",")
    elif isinstance(hidden, (tuple, list)):
        parts = list(hidden)
    else:
        raise TypeError(f"{name} must be a sequence of ints, got {type(hidden).__name__}")
    if not parts or not all(str(part).strip().isdigit() and int(part) >= 1 for part in parts):
        raise ValueError(f"{name} must be ints >= 1 (e.g. 200,200), got {hidden!r}")
    return tuple(int(part) for part in parts)


def vqvae_preset(
    image_shape: tuple[int, ...] = (3, 32, 32),
    *,
    hidden_channels: int | None = None,
    embedding_dim: int = 16,
    quantizer: str | Callable[..., nn.Module] = "vq",
    **quantizer_options: Any,
) -> VQVAE:
    """The reference conv VQ-VAE sized for ``image_shape``: the ``vqvae`` of ``genlatent train``.

    Two stride-2 convolutions give an $(H/4, W/4)$ grid of ``embedding_dim``-dim vectors,
    quantized by the registered quantizer ``quantizer`` names (see
    `genlatent.models.quantizers`: ``"vq"``, ``"fsq"``, ``"lfq"``, ``"rvq"``, ``"simvq"``,
    ``"bsq"``, or your own
    builder) with ``quantizer_options``, and the mirrored decoder. With ``"vq"`` on
    $(3, 32, 32)$ and 512 channels it is the reference CIFAR-10 VQ-VAE (`cifar10_vqvae`).

    Args:
        image_shape: one example's shape $(C, H, W)$, $H$ and $W$ multiples of 4.
        hidden_channels: conv width (default 512 for colour images, 64 for greyscale).
        embedding_dim: code dimension D (the encoder's output channels).
        quantizer: the quantizer, vq, fsq, lfq, rvq (residual), simvq, bsq or FILE.py:FUNCTION.
        quantizer_options: options of that quantizer; one it does not take is refused.

    Raises:
        ValueError: on a shape the encoder cannot take, an unknown quantizer, or an option
            the quantizer does not take.

    Example:
        >>> vqvae_preset((1, 28, 28), quantizer="fsq", levels=(8, 5, 5)).grid_shape
        (7, 7)
    """
    in_channels, height, width = _image_shape(image_shape)
    if height % 4 or width % 4:
        raise ValueError(
            f"image_shape height and width must be divisible by 4 (two stride-2 convolutions), "
            f"got {tuple(image_shape)}"
        )
    width_channels = hidden_channels or (512 if in_channels == 3 else 64)
    chosen = build_quantizer(quantizer, embedding_dim, **quantizer_options)
    return VQVAE(
        ConvEncoder(in_channels, width_channels, embedding_dim),
        chosen,  # type: ignore[arg-type]
        ConvDecoder(embedding_dim, width_channels, in_channels),
        grid_shape=(height // 4, width // 4, *quantizer_stages(chosen, embedding_dim)),
    )


def tokenizer_preset(
    image_shape: tuple[int, ...] = (3, 32, 32),
    *,
    hidden_channels: int | None = None,
    embedding_dim: int = 16,
    quantizer: str | Callable[..., nn.Module] = "vq",
    disc_start: int = 0,
    disc_weight: float = 0.8,
    disc_channels: int = 64,
    disc_layers: int = 2,
    perceptual_weight: float = 0.0,
    **quantizer_options: Any,
) -> Tokenizer:
    """An image tokenizer sized for ``image_shape``: the ``tokenizer`` of ``genlatent train``.

    The autoencoder of `vqvae_preset` (same options, same quantizers) trained against a
    `PatchDiscriminator` with GroupNorm (no statistics shared across a batch, so a batch
    split over processes trains as a whole one) and hinge losses, as a `Tokenizer`. With
    ``perceptual_weight`` > 0 it has the offline perceptual loss: a `PerceptualLoss` over
    fresh `ClassifierFeatureMaps`, whose weights `fit` learns on a new run from the run's
    labelled training data (a classifier trained with seed 1, where the Fréchet distances
    of ``genlatent eval`` use seed 0; see `init_feature_maps`). For LPIPS's network build a
    `Tokenizer` with ``perceptual=PerceptualLoss.from_lpips()`` and pass it to `fit`.

    Args:
        image_shape: one example's shape $(C, H, W)$, $H$ and $W$ multiples of 4.
        hidden_channels: conv width (default 512 for colour images, 64 for greyscale).
        embedding_dim: code dimension D (the encoder's output channels).
        quantizer: the quantizer, vq, fsq, lfq, rvq (residual), simvq, bsq or FILE.py:FUNCTION.
        disc_start: the global step from which the discriminator trains and the
            generator's adversarial term is on.
        disc_weight: the adversarial term's weight, times the adaptive weight.
        disc_channels: the discriminator's first width.
        disc_layers: the discriminator's stride-2 convolutions (its side shrinks by
            2^layers: 2 for 28x28 or 32x32 images).
        perceptual_weight: the weight of the perceptual distance in the generator's loss,
            over the feature maps of a classifier of the run's data (square images,
            labelled, in memory); 0 for none.
        quantizer_options: options of that quantizer; one it does not take is refused.

    Raises:
        ValueError: as `vqvae_preset`; images too small for ``disc_layers``; a negative
            ``perceptual_weight``, or one > 0 for images that are not square.

    Example:
        >>> model = tokenizer_preset((1, 28, 28), quantizer="fsq", levels=(8, 5, 5))
        >>> model.grid_shape, list(model.optimizer_groups())
        ((7, 7), ['generator', 'discriminator'])
    """
    autoencoder = vqvae_preset(
        image_shape, hidden_channels=hidden_channels, embedding_dim=embedding_dim,
        quantizer=quantizer, **quantizer_options,
    )  # fmt: skip
    channels, height, width = _image_shape(image_shape)
    discriminator = PatchDiscriminator(channels, channels=disc_channels, layers=disc_layers,
                                       norm="group")  # fmt: skip
    if min(discriminator.output_size(height), discriminator.output_size(width)) < 1:
        raise ValueError(
            f"disc_layers={disc_layers} needs images of side >= {3 * 2**disc_layers}, got "
            f"image_shape {tuple(image_shape)}"
        )
    perceptual: dict[str, Any] = {}  # none by default: the Tokenizer's own defaults
    if check_non_negative_float("perceptual_weight", perceptual_weight) > 0:
        if height != width:
            raise ValueError(
                "perceptual_weight > 0 needs square images (the classifier behind the "
                f"perceptual loss takes S x S images), got image_shape {tuple(image_shape)}"
            )
        features = ClassifierFeatureMaps(channels, image_size=height)
        perceptual = {"perceptual": PerceptualLoss(features)}
        perceptual["perceptual_weight"] = perceptual_weight
    return Tokenizer(
        autoencoder, discriminator, disc_start=disc_start, disc_weight=disc_weight, **perceptual
    )


PRESETS: dict[str, Callable[..., nn.Module]] = {
    "vae": vae_preset,
    "vqvae": vqvae_preset,
    "tokenizer": tokenizer_preset,
}
"""The presets ``genlatent train`` names, by name: each builder's keyword parameters are
its options (flags, help and checks are read from them)."""


def preset(name: str, image_shape: tuple[int, ...], **options: Any) -> nn.Module:
    """The reference model ``name`` (``"vae"``, ``"vqvae"``, ``"tokenizer"``) for ``image_shape``.

    ``options`` are the keyword arguments of `vae_preset`, `vqvae_preset` or
    `tokenizer_preset`; one that does
    not apply is refused, never ignored.

    Raises:
        ValueError: if ``name`` is not a preset, or an option does not apply to it.

    Example:
        >>> sum(p.numel() for p in preset("vae", (1, 28, 28)).parameters())
        1189984
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    builder = PRESETS[name]
    if name == "vae":
        unknown = sorted(set(options) - set(parameter_options(builder)))
        if unknown:
            raise ValueError(f"options that do not apply to preset 'vae': {', '.join(unknown)}")
    return builder(tuple(image_shape), **options)
