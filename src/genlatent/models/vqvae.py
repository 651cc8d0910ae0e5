"""The vector-quantized autoencoder: encoder, quantizer, decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from genlatent.losses.vq import VQVAELoss, vqvae_loss
from genlatent.nn.quantize import VectorQuantizer

__all__ = ["VQVAE", "VQVAEOutput"]


class VQVAEOutput(NamedTuple):
    """What `VQVAE.forward` returns."""

    reconstruction: torch.Tensor
    """Decoder output, shaped like the input."""
    indices: torch.Tensor
    """Code chosen at each latent position, $(B, h, w)$, int64."""
    loss: torch.Tensor
    """The quantizer's loss: codebook term + commitment_weight x commitment term."""
    perplexity: torch.Tensor
    """Perplexity of the codes used in this batch, in $[1, K]$."""
    codebook_loss: torch.Tensor
    """The codebook term alone (zero in EMA mode, where no gradient trains the codebook)."""
    commitment_loss: torch.Tensor
    """The commitment term alone, before its weight."""


class VQVAE(nn.Module):
    r"""VQ-VAE (van den Oord et al. 2017): encode, snap to the nearest code, decode.

    $$z_e = \operatorname{enc}(x), \qquad z_q = e_{k}, \; k = \arg\min_j \lVert z_e - e_j\rVert,
      \qquad \hat{x} = \operatorname{dec}(z_q),$$

    with the straight-through estimator carrying the decoder's gradient to the encoder.

    Args:
        encoder: maps images $(B, C, H, W)$ to latents $(B, D, h, w)$, such as `ConvEncoder`.
        quantizer: a `VectorQuantizer` with ``embedding_dim`` $D$.
        decoder: maps $(B, D, h, w)$ back to images, such as `ConvDecoder`.

    Raises:
        TypeError: if ``encoder``, ``quantizer`` or ``decoder`` is not an ``nn.Module``.

    Example:
        >>> import torch
        >>> from genlatent import ConvDecoder, ConvEncoder, VectorQuantizer
        >>> model = VQVAE(ConvEncoder(3, 32, 8), VectorQuantizer(64, 8), ConvDecoder(8, 32, 3))
        >>> out = model(torch.rand(2, 3, 32, 32))
        >>> out.reconstruction.shape, out.indices.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 8, 8]))
        >>> model.decode_indices(model.encode(torch.rand(2, 3, 32, 32))).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, encoder: nn.Module, quantizer: VectorQuantizer, decoder: nn.Module) -> None:
        super().__init__()
        # any module with VectorQuantizer's interface will do as the quantizer
        parts = (("encoder", encoder), ("quantizer", quantizer), ("decoder", decoder))
        for name, module in parts:
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        """Reconstruct ``x`` through the codebook."""
        q = self.quantizer(self.encoder(x))
        return VQVAEOutput(
            reconstruction=self.decoder(q.quantized),
            indices=q.indices,
            loss=q.loss,
            perplexity=q.perplexity,
            codebook_loss=q.codebook_loss,
            commitment_loss=q.commitment_loss,
        )

    def loss(self, x: torch.Tensor, *, reduction: str = "mean") -> VQVAELoss:
        """Reconstruction MSE plus the quantizer's loss (see `vqvae_loss`)."""
        out = self(x)
        return vqvae_loss(x, out.reconstruction, out.loss, reduction=reduction)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Return the code indices of ``x``, shape $(B, h, w)$; no quantizer state changes."""
        return self.quantizer.encode(self.encoder(x))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Decode a grid of code indices $(B, h, w)$ to images."""
        return self.decoder(self.quantizer.lookup(indices))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Return the decoder's reconstruction of ``x``."""
        return self(x).reconstruction
