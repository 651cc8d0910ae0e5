r"""The image tokenizer (VQGAN): a quantized autoencoder trained against a discriminator.

A `Tokenizer` wraps an autoencoder (a `VQVAE` around any quantizer) and a discriminator
(a `PatchDiscriminator`) and trains them as two parameter groups, ``"generator"`` and
``"discriminator"``, by the protocol of `genlatent.MultiOptimizerModel`: `genlatent.fit`
steps one optimiser per group on every batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import torch
from torch import nn

from genlatent._protocols import OptimizerGroup
from genlatent._validation import check_choice, check_non_negative_float, check_positive_float
from genlatent.functional._dtype import at_least_float32
from genlatent.losses.adversarial import (
    adaptive_weight,
    hinge_discriminator_loss,
    hinge_generator_loss,
    non_saturating_discriminator_loss,
    non_saturating_generator_loss,
)
from genlatent.pretrained import PretrainedMixin

__all__ = ["DiscriminatorLoss", "Tokenizer", "TokenizerLoss"]

GROUPS = ("generator", "discriminator")
_ADVERSARIAL: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "non_saturating": (non_saturating_generator_loss, non_saturating_discriminator_loss),
}
_LAST_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Conv1d, nn.Conv3d)


class TokenizerLoss(NamedTuple):
    """What `Tokenizer.loss` returns for the ``"generator"`` group (all float32 scalars)."""

    loss: torch.Tensor
    """The generator's objective: reconstruction + quantizer + weighted adversarial term."""
    reconstruction_loss: torch.Tensor
    """Pixel MSE plus ``perceptual_weight`` x perceptual distance."""
    pixel_loss: torch.Tensor
    """The squared error per pixel, averaged over pixels and the batch."""
    perceptual_loss: torch.Tensor
    """The perceptual distance (zero without a perceptual network)."""
    quantizer_loss: torch.Tensor
    """The quantizer's loss (codebook + commitment for VQ)."""
    adversarial_loss: torch.Tensor
    """The generator's adversarial loss (zero before ``disc_start``)."""
    adversarial_weight: torch.Tensor
    r"""``disc_weight`` x the adaptive weight $\lambda$ (zero before ``disc_start``)."""
    terms: dict[str, torch.Tensor]
    """The quantizer's named terms."""
    code_counts: torch.Tensor
    """This batch's code counts, $(K,)$ or $(S, K)$."""


class DiscriminatorLoss(NamedTuple):
    """What `Tokenizer.loss` returns for the ``"discriminator"`` group."""

    loss: torch.Tensor
    """The discriminator's loss on real images and detached reconstructions."""
    real_logits: torch.Tensor
    """The mean logit of the real images."""
    fake_logits: torch.Tensor
    """The mean logit of the reconstructions."""


def last_layer_weight(decoder: nn.Module) -> torch.Tensor:
    """The weight of the decoder's last convolution or linear layer (in module order).

    Raises:
        ValueError: if ``decoder`` holds no such layer.
    """
    layers = [m for m in decoder.modules() if isinstance(m, _LAST_LAYERS)]
    if not layers:
        raise ValueError(
            f"autoencoder.decoder must hold a convolution or linear layer (for the adaptive "
            f"weight at its last layer), got {type(decoder).__name__} without one"
        )
    return layers[-1].weight


class Tokenizer(nn.Module, PretrainedMixin):
    r"""An image tokenizer as VQGAN trains one (Esser et al. 2021): a quantized autoencoder
    whose reconstructions a patch discriminator judges.

    The generator's loss (group ``"generator"``) at global step $t$:

    $$\mathcal{L}_G = \underbrace{\overline{(\hat x - x)^2} + w_p\, d_{p}(\hat x, x)}
      _{\mathcal{L}_{rec}} + \mathcal{L}_{Q}
      + [t \ge t_0]\; w_d\, \lambda\, \mathcal{L}_{GAN}(D(\hat x)),
      \qquad \lambda = \frac{\lVert\nabla_W \mathcal{L}_{rec}\rVert}
      {\lVert\nabla_W \mathcal{L}_{GAN}\rVert + 10^{-4}},$$

    with $\hat x$ the reconstruction, $d_p$ the perceptual distance (``perceptual``),
    $\mathcal{L}_Q$ the quantizer's loss, $t_0$ = ``disc_start``, $w_d$ = ``disc_weight``
    and $W$ the weight of the decoder's last layer (`adaptive_weight`). The
    discriminator's loss (group ``"discriminator"``), from step $t_0$ on only, is the hinge
    (or non-saturating) loss on real images and reconstructions computed without
    gradients (``decode(encode(x))``, which changes no quantizer state). Before $t_0$ the
    generator sees no adversarial term and the discriminator does not train: its group's
    ``start_step`` is $t_0$, so the trainer neither computes its loss nor steps it.

    Both groups use Adam with $\beta = (0.5, 0.9)$, as VQGAN; the discriminator's
    learning rate is ``disc_lr_factor`` times the run's. Evaluation (``step=None``) and a
    plain ``loss(x)`` score the generator's loss without the adversarial term.

    Args:
        autoencoder: the quantized autoencoder, a `VQVAE`; or latent diffusion's
            continuous one, a `KLAutoencoder` (any module whose call returns
            ``reconstruction``, ``quantizer_loss``, ``terms`` and ``counts``, with
            ``encode``/``decode`` and a ``decoder`` attribute).
        discriminator: maps images $(B, C, H, W)$ to logits, such as `PatchDiscriminator`.
        perceptual: a perceptual distance ``perceptual(x, y)`` returning a scalar, such as
            `PerceptualLoss`; ``None``: none (the default).
        perceptual_weight: $w_p$.
        disc_start: $t_0$, the global step from which the adversarial game is played.
        disc_weight: $w_d$.
        adversarial: ``"hinge"`` (VQGAN) or ``"non_saturating"``.
        disc_lr_factor: the discriminator's learning rate as a multiple of the run's.

    Raises:
        TypeError: if ``autoencoder``, ``discriminator`` or ``perceptual`` is not a module.
        ValueError: on a negative weight or start, an unknown ``adversarial``, or a decoder
            without a last convolution or linear layer.

    Example:
        >>> import torch
        >>> from genlatent import ConvDecoder, ConvEncoder, FSQ, PatchDiscriminator, VQVAE
        >>> model = Tokenizer(
        ...     VQVAE(ConvEncoder(1, 8, 3), FSQ((5, 3, 3)), ConvDecoder(3, 8, 1)),
        ...     PatchDiscriminator(1, channels=8, layers=1),
        ...     disc_start=2,
        ... )
        >>> x = torch.rand(4, 1, 8, 8)
        >>> list(model.optimizer_groups())
        ['generator', 'discriminator']
        >>> float(model.loss(x, group="generator", step=1).adversarial_weight)
        0.0
        >>> model.loss(x, group="discriminator", step=2).loss.shape
        torch.Size([])
    """

    best_by_test_loss = False
    """`fit` keeps the last evaluation as ``best.pt``: the test loss (pixel, perceptual and
    quantizer terms, no adversarial one) is not what the generator minimises once the
    discriminator plays, and the weights with the lowest one tend to be those from before
    the game has done its work (see the results page's tokenizer section)."""

    loss_unit = "MSE"
    """What the loss terms are measured in: mean squared errors per pixel (the quantizer's
    per latent element; the adversarial terms are logits)."""

    def __init__(
        self,
        autoencoder: nn.Module,
        discriminator: nn.Module,
        *,
        perceptual: nn.Module | None = None,
        perceptual_weight: float = 1.0,
        disc_start: int = 0,
        disc_weight: float = 0.8,
        adversarial: str = "hinge",
        disc_lr_factor: float = 1.0,
    ) -> None:
        super().__init__()
        for name, module in (("autoencoder", autoencoder), ("discriminator", discriminator)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        if perceptual is not None and not isinstance(perceptual, nn.Module):
            raise TypeError(f"perceptual must be an nn.Module or None, got {type(perceptual)}")
        if isinstance(disc_start, bool) or not isinstance(disc_start, int) or disc_start < 0:
            raise ValueError(f"disc_start must be an int >= 0, got {disc_start!r}")
        self.autoencoder = autoencoder
        self.discriminator = discriminator
        self.perceptual = perceptual
        self.perceptual_weight = check_non_negative_float("perceptual_weight", perceptual_weight)
        self.disc_start = disc_start
        self.disc_weight = check_non_negative_float("disc_weight", disc_weight)
        self.adversarial = check_choice("adversarial", adversarial, tuple(_ADVERSARIAL))
        self.disc_lr_factor = check_positive_float("disc_lr_factor", disc_lr_factor)
        last_layer_weight(getattr(autoencoder, "decoder", autoencoder))  # fail early

    @property
    def grid_shape(self) -> tuple[int, ...] | None:
        """The autoencoder's code grid shape $(h, w)$ (what a prior over codes models)."""
        return getattr(self.autoencoder, "grid_shape", None)

    @property
    def quantizer(self) -> nn.Module:
        """The autoencoder's quantizer."""
        return cast(nn.Module, self.autoencoder.quantizer)

    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        """``"generator"`` (the autoencoder) and ``"discriminator"`` (from ``disc_start``)."""
        betas = (0.5, 0.9)
        return {
            "generator": OptimizerGroup(self.autoencoder.parameters(), betas=betas),
            "discriminator": OptimizerGroup(
                self.discriminator.parameters(),
                betas=betas,
                lr_factor=self.disc_lr_factor,
                start_step=self.disc_start,
            ),
        }

    def loss(
        self, x: torch.Tensor, *, group: str = "generator", step: int | None = None
    ) -> TokenizerLoss | DiscriminatorLoss:
        """The loss of ``group`` at global step ``step`` (``None``: no adversarial term).

        Args:
            x: images $(B, C, H, W)$.
            group: ``"generator"`` or ``"discriminator"``.
            step: the trainer's global step (1 for the first).

        Raises:
            ValueError: on an unknown ``group``, or the ``"discriminator"`` group before
                ``disc_start``.
        """
        group = check_choice("group", group, GROUPS)
        playing = step is not None and step >= self.disc_start
        if group == "discriminator":
            if not playing:
                raise ValueError(
                    f"the discriminator trains from step disc_start={self.disc_start}, got "
                    f"step={step}"
                )
            return self._discriminator_loss(x)
        return self._generator_loss(x, adversarial=playing)

    def _generator_loss(self, x: torch.Tensor, *, adversarial: bool) -> TokenizerLoss:
        out = self.autoencoder(x)
        target, reconstruction = at_least_float32(x), at_least_float32(out.reconstruction)
        pixel = (reconstruction - target).square().mean()
        zero = pixel.new_zeros(())
        perceptual = zero
        if self.perceptual is not None:
            perceptual = at_least_float32(self.perceptual(reconstruction, target))
        reconstruction_loss = pixel + self.perceptual_weight * perceptual
        quantizer_loss = at_least_float32(out.quantizer_loss)
        generator_loss, weight = zero, zero
        if adversarial:
            logits = self.discriminator(out.reconstruction)
            generator_loss = at_least_float32(_ADVERSARIAL[self.adversarial][0](logits))
            last = last_layer_weight(cast(nn.Module, self.autoencoder.decoder))
            weight = self.disc_weight * adaptive_weight(reconstruction_loss, generator_loss, last)
        return TokenizerLoss(
            loss=reconstruction_loss + quantizer_loss + weight * generator_loss,
            reconstruction_loss=reconstruction_loss,
            pixel_loss=pixel,
            perceptual_loss=perceptual,
            quantizer_loss=quantizer_loss,
            adversarial_loss=generator_loss,
            adversarial_weight=weight,
            terms=out.terms,
            code_counts=out.counts,
        )

    def _discriminator_loss(self, x: torch.Tensor) -> DiscriminatorLoss:
        with torch.no_grad():
            fake = self.decode(self.encode(x))
        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(fake.to(x.dtype))
        loss = _ADVERSARIAL[self.adversarial][1](real_logits, fake_logits)
        return DiscriminatorLoss(
            loss=at_least_float32(loss),
            real_logits=at_least_float32(real_logits.detach().mean()),
            fake_logits=at_least_float32(fake_logits.detach().mean()),
        )

    def forward(self, x: torch.Tensor) -> Any:
        """The autoencoder's output for ``x`` (see `VQVAE.forward`)."""
        return self.autoencoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x``, shaped like it."""
        return self.autoencoder(x).reconstruction

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code indices of ``x``, $(B, h, w)$ (a `KLAutoencoder`'s latent means, $(B, D,
        h, w)$); no quantizer state changes."""
        return self._method("encode")(x)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Images from a grid of code indices $(B, h, w)$."""
        return self._method("decode")(indices)

    def sample(self, num_samples: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode grids of uniformly random codes (see `VQVAE.sample`): fit a prior for samples."""
        return self._method("sample")(num_samples, generator=generator)

    def generate(self, prior: nn.Module, num_samples: int, **options: Any) -> torch.Tensor:
        """Draw code grids from ``prior`` and decode them (see `VQVAE.generate`)."""
        return self._method("generate")(prior, num_samples, **options)

    def _method(self, name: str) -> Callable[..., torch.Tensor]:
        return cast(Callable[..., torch.Tensor], getattr(self.autoencoder, name))

    def extra_repr(self) -> str:
        return (
            f"disc_start={self.disc_start}, disc_weight={self.disc_weight}, "
            f"perceptual_weight={self.perceptual_weight}, adversarial={self.adversarial!r}"
        )
