"""The vector-quantized autoencoder: encoder, quantizer, decoder."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from genlatent._deprecation import renamed_method
from genlatent._device import module_device
from genlatent._protocols import declared_keywords
from genlatent._validation import check_positive_int
from genlatent.functional._dtype import at_least_float32
from genlatent.losses.vq import VQVAELoss, vqvae_loss
from genlatent.nn.quantizer import Quantizer, check_quantizer
from genlatent.pretrained import PretrainedMixin

__all__ = ["VQVAE", "VQVAEOutput"]


class VQVAEOutput(NamedTuple):
    """What `VQVAE.forward` returns."""

    reconstruction: torch.Tensor
    """Decoder output, shaped like the input."""
    indices: torch.Tensor
    """Code chosen at each latent position, $(B, h, w)$ (or $(B, h, w, S)$), int64."""
    quantizer_loss: torch.Tensor
    """The quantizer's loss to add (for VQ: codebook + commitment_weight x commitment)."""
    terms: dict[str, torch.Tensor]
    """The quantizer's named terms, unweighted (see `QuantizerOutput`)."""
    counts: torch.Tensor
    """This batch's code counts, $(K,)$ or $(S, K)$."""


class VQVAE(nn.Module, PretrainedMixin):
    r"""VQ-VAE (van den Oord et al. 2017): encode, snap to the nearest code, decode.

    $$z_e = \operatorname{enc}(x), \qquad z_q = e_{k}, \; k = \arg\min_j \lVert z_e - e_j\rVert,
      \qquad \hat{x} = \operatorname{dec}(z_q),$$

    with the straight-through estimator carrying the decoder's gradient to the encoder.

    Args:
        encoder: maps images $(B, C, H, W)$ to latents $(B, D, h, w)$, such as `ConvEncoder`.
        quantizer: any module that follows the quantizer contract (`Quantizer`): a
            `VectorQuantizer` with ``embedding_dim`` $D$, or one of your own.
        decoder: maps $(B, D, h, w)$ back to images, such as `ConvDecoder`.
        grid_shape: the shape of one example's index grid, $(h, w)$ (``(8, 8)`` for the
            CIFAR-10 preset); what `sample` draws. ``None``: read off the first batch
            the model quantizes. Either way it travels in the ``state_dict`` (as the int64
            entry ``grid_shape``, absent while unknown) and in `save_pretrained`'s config.

    Raises:
        TypeError: if ``encoder``, ``quantizer`` or ``decoder`` is not an ``nn.Module``,
            or the quantizer lacks part of the contract.

    Example:
        >>> import torch
        >>> from genlatent import ConvDecoder, ConvEncoder, VectorQuantizer
        >>> model = VQVAE(ConvEncoder(3, 32, 8), VectorQuantizer(64, 8), ConvDecoder(8, 32, 3))
        >>> out = model(torch.rand(2, 3, 32, 32))
        >>> out.reconstruction.shape, out.indices.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 8, 8]))
        >>> model.decode(model.encode(torch.rand(2, 3, 32, 32))).shape
        torch.Size([2, 3, 32, 32])
    """

    loss_unit = "MSE"
    """What the loss terms are measured in: mean squared errors (the reconstruction's
    per pixel, the quantizer's per latent element)."""

    def __init__(
        self,
        encoder: nn.Module,
        quantizer: Quantizer,
        decoder: nn.Module,
        *,
        grid_shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        check_quantizer(quantizer)
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder
        self.grid_shape = None if grid_shape is None else tuple(int(n) for n in grid_shape)

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        """Reconstruct ``x`` through the codebook."""
        q = self.quantizer(self.encoder(x))
        if self.grid_shape is None:
            self.grid_shape = tuple(q.indices.shape[1:])
        return VQVAEOutput(
            reconstruction=self.decoder(q.quantized),
            indices=q.indices,
            quantizer_loss=q.loss,
            terms=q.terms,
            counts=q.counts,
        )

    def loss(self, x: torch.Tensor, *, reduction: str = "mean") -> VQVAELoss:
        """Reconstruction MSE plus the quantizer's loss (see `vqvae_loss`), in float32.

        The result also carries the quantizer's named ``terms`` and this batch's
        ``code_counts``, which a trainer logs and sums.
        """
        out = self(x)
        x, reconstruction, quantizer_loss = (
            at_least_float32(t) for t in (x, out.reconstruction, out.quantizer_loss)
        )
        losses = vqvae_loss(x, reconstruction, quantizer_loss, reduction=reduction)
        return losses._replace(terms=out.terms, code_counts=out.counts)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Return the code indices of ``x``, shape $(B, h, w)$; no quantizer state changes."""
        return self.quantizer.encode(self.encoder(x))

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Decode a grid of code indices $(B, h, w)$ (as `encode` gives) to images."""
        return self.decoder(self.quantizer.decode(indices))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Return the decoder's reconstruction of ``x``."""
        return self(x).reconstruction

    def sample(self, num_samples: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode grids of uniformly random codes, $(N, *)$ images.

        Without a prior over codes this shows what the decoder makes of the codebook, not
        what the model would generate; fit a prior on the codes for real samples.

        Raises:
            ValueError: if ``num_samples < 1``, or ``grid_shape`` is unknown (neither given
                nor seen in a forward pass).
        """
        check_positive_int("num_samples", num_samples)
        if self.grid_shape is None:
            raise ValueError(
                "grid_shape is unknown: pass VQVAE(..., grid_shape=(h, w)) or run a batch "
                "through the model first"
            )
        device = module_device(self)
        indices = torch.randint(
            self.quantizer.codebook_size,
            (num_samples, *self.grid_shape),
            generator=generator,
            device=device,
        )
        return self.decode(indices)

    @torch.no_grad()
    def generate(
        self,
        prior: nn.Module,
        num_samples: int,
        *,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        guidance_scale: float = 1.0,
        steps: int | None = None,
    ) -> torch.Tensor:
        """Draw code grids from ``prior`` and decode them: the VQ-VAE's samples, $(N, *)$.

        Args:
            prior: a prior over this model's code grids with ``sample(num, *, labels,
                temperature, top_k, top_p, generator)``, such as `TransformerPrior`.
            num_samples: how many images.
            labels: the class of each sample $(N,)$, for a class-conditional prior.
            temperature: passed to ``prior.sample``.
            top_k: passed to ``prior.sample``.
            top_p: passed to ``prior.sample``.
            generator: the source of the prior's draws.
            guidance_scale: passed to ``prior.sample`` when not 1 (classifier-free
                guidance; a prior without the option is called as before).
            steps: passed to ``prior.sample`` when given: the parallel steps of a prior
                that draws a grid in steps, such as `MaskGITPrior`.

        Raises:
            ValueError: if ``steps`` is given for a prior whose ``sample`` has no ``steps``
                (one that draws one code at a time).

        Example:
            >>> import torch
            >>> from genlatent import ConvDecoder, ConvEncoder, TransformerPrior, VectorQuantizer
            >>> model = VQVAE(ConvEncoder(1, 8, 4), VectorQuantizer(16, 4), ConvDecoder(4, 8, 1),
            ...               grid_shape=(2, 2))
            >>> prior = TransformerPrior(16, (2, 2), layers=1, heads=1, dim=8)
            >>> model.generate(prior, 3).shape
            torch.Size([3, 1, 8, 8])
        """
        check_positive_int("num_samples", num_samples)
        options: dict[str, Any] = (
            {} if guidance_scale == 1.0 else {"guidance_scale": guidance_scale}
        )
        if steps is not None:
            if "steps" not in declared_keywords(prior.sample, ("steps",)):  # type: ignore[arg-type]
                raise ValueError(
                    f"steps applies to a prior that draws a grid in parallel steps (such as "
                    f"MaskGITPrior); {type(prior).__name__} draws one code at a time, got "
                    f"steps={steps}"
                )
            options["steps"] = steps
        indices = prior.sample(  # type: ignore[operator]
            num_samples, labels=labels, temperature=temperature, top_k=top_k, top_p=top_p,
            generator=generator, **options,
        )  # fmt: skip
        device = module_device(self)
        return self.decode(indices.to(device))

    def pretrained_arguments(self) -> dict[str, Any]:
        """The constructor arguments, with the ``grid_shape`` read off a batch since."""
        return {**super().pretrained_arguments(), "grid_shape": self.grid_shape}

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.grid_shape is not None:
            destination[prefix + _GRID_SHAPE] = torch.tensor(self.grid_shape, dtype=torch.int64)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        # a state without the entry (older checkpoints, an unknown shape) keeps ours
        saved = state_dict.pop(prefix + _GRID_SHAPE, None)
        if saved is not None:
            self.grid_shape = tuple(int(n) for n in saved.tolist())
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return f"grid_shape={self.grid_shape}"

    # Old names of 0.1, kept for one release (see docs/guides/migration.md).
    decode_indices = renamed_method("VQVAE", "decode_indices", "decode")


_GRID_SHAPE = "grid_shape"
