r"""Latent diffusion's continuous autoencoder, a KL-regularised latent: `KLAutoencoder`."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from genlatent._validation import check_non_negative_float, check_positive_int
from genlatent.functional._dtype import at_least_float32
from genlatent.functional.gaussian import gaussian_kl, reparameterize
from genlatent.pretrained import PretrainedMixin

__all__ = ["KLAutoencoder", "KLAutoencoderOutput"]


class KLAutoencoderOutput(NamedTuple):
    """What `KLAutoencoder.forward` returns (the fields a `Tokenizer` reads, and the latent)."""

    reconstruction: torch.Tensor
    """Decoder output, shaped like the input."""
    latents: torch.Tensor
    """The latent decoded: a draw of $q(z \\mid x)$ in training, its mean in eval mode."""
    quantizer_loss: torch.Tensor
    """The latent's loss to add: ``kl_weight`` times ``terms["kl"]`` (the field's name is
    the `Tokenizer`'s, which adds it whatever the latent is)."""
    terms: dict[str, torch.Tensor]
    """``kl``: the KL to $\\mathcal{N}(0, I)$ per latent element, averaged, unweighted."""
    counts: None
    """No codes: ``None``."""


class KLAutoencoder(nn.Module, PretrainedMixin):
    r"""A convolutional autoencoder with a Gaussian latent and a small KL term (Rombach et al.
    2022, the "KL-reg" first stage of latent diffusion).

    The encoder gives $2D$ channels, the mean $\mu$ and log-variance $\log\sigma^2$ of a
    diagonal Gaussian at every latent position; training decodes a draw
    $z = \mu + \sigma \odot \varepsilon$, eval mode decodes $\mu$ (the posterior's mode, as
    latent diffusion encodes for its second stage). The latent's loss is

    $$\mathcal{L}_z = w_{KL} \cdot \frac{1}{N} \sum_{n, j}
      -\tfrac12\big(1 + \log\sigma_{nj}^2 - \mu_{nj}^2 - \sigma_{nj}^2\big),$$

    the KL to $\mathcal{N}(0, I)$ averaged over the $N$ latent elements of the batch, as
    the `Tokenizer`'s pixel MSE is averaged over pixels. Latent diffusion sums both terms
    over their elements instead and weighs the KL $10^{-6}$; with per-element means the
    same balance is $w_{KL} = 10^{-6} \cdot$ (latent elements / pixels), which is
    $10^{-6}$ for a 16-channel 7x7 latent of a 28x28 image (the default). So small a
    weight keeps the latent near, not at, $\mathcal{N}(0, I)$: decoding draws of
    $\mathcal{N}(0, I)$ (`sample`) gives poor images, and a generative model of the latents
    (diffusion) is what makes such an autoencoder generate.

    Wrapped in a `Tokenizer`, it trains with the perceptual and adversarial terms exactly
    as a quantized autoencoder does; `encode` then gives latents, not code indices, and no
    prior over codes applies.

    Args:
        encoder: maps images $(B, C, H, W)$ to $(B, 2D, h, w)$, e.g.
            ``ConvEncoder(C, hidden, 2 * D)``.
        decoder: maps $(B, D, h, w)$ back to images, e.g. ``ConvDecoder(D, hidden, C)``.
        latent_channels: $D$.
        kl_weight: $w_{KL} \ge 0$.

    Raises:
        TypeError: if ``encoder`` or ``decoder`` is not a module.
        ValueError: if ``latent_channels`` < 1 or ``kl_weight`` < 0; in ``forward``, if
            the encoder does not give $2D$ channels.

    Shape:
        - x: $(B, C, H, W)$
        - latents: $(B, D, h, w)$

    Example:
        >>> import torch
        >>> from genlatent import ConvDecoder, ConvEncoder
        >>> model = KLAutoencoder(ConvEncoder(1, 8, 8), ConvDecoder(4, 8, 1), latent_channels=4)
        >>> out = model(torch.rand(2, 1, 8, 8))
        >>> out.reconstruction.shape, out.latents.shape, sorted(out.terms)
        (torch.Size([2, 1, 8, 8]), torch.Size([2, 4, 2, 2]), ['kl'])
        >>> model = model.eval()
        >>> x = torch.rand(2, 1, 8, 8)
        >>> torch.equal(model.decode(model.encode(x)), model(x).reconstruction)
        True
    """

    latent_shape: torch.Tensor

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        latent_channels: int,
        kl_weight: float = 1e-6,
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_channels = check_positive_int("latent_channels", latent_channels)
        self.kl_weight = check_non_negative_float("kl_weight", kl_weight)
        # (D, h, w) of the latents, learnt from the first batch (zeros until then) and
        # saved with the weights, so that `sample` knows what to draw
        self.register_buffer("latent_shape", torch.zeros(3, dtype=torch.long))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and log-variance of $q(z \\mid x)$, each $(B, D, h, w)$."""
        moments = self.encoder(x)
        if moments.ndim < 2 or moments.shape[1] != 2 * self.latent_channels:
            raise ValueError(
                f"the encoder must give 2 * latent_channels = {2 * self.latent_channels} "
                f"channels (mean and log-variance), got shape {tuple(moments.shape)}"
            )
        mean, log_var = moments.chunk(2, dim=1)
        if mean.ndim == 4 and not bool(self.latent_shape.any()):
            self.latent_shape.copy_(torch.tensor(mean.shape[1:]))
        return mean, log_var

    def forward(self, x: torch.Tensor) -> KLAutoencoderOutput:
        """Encode, draw (or take the mean in eval mode), decode, and the KL term."""
        mean, log_var = self.posterior(x)
        latents = reparameterize(mean, log_var) if self.training else mean
        mean32, log_var32 = at_least_float32(mean), at_least_float32(log_var)
        # per element: the closed form over a last dimension of size 1, averaged
        kl = gaussian_kl(mean32.reshape(-1, 1), log_var32.reshape(-1, 1), reduction="mean")
        return KLAutoencoderOutput(
            reconstruction=self.decoder(latents),
            latents=latents,
            quantizer_loss=self.kl_weight * kl,
            terms={"kl": kl},
            counts=None,
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior means of ``x``, $(B, D, h, w)$: the latents a second stage models."""
        return self.posterior(x)[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images from latents $(B, D, h, w)$."""
        return self.decoder(latents)

    def sample(self, num_samples: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode draws of $\\mathcal{N}(0, I)$ at the latent shape of the data seen.

        Poor images with the small default ``kl_weight`` (see the class): the latents of
        data are not distributed as $\\mathcal{N}(0, I)$.

        Raises:
            RuntimeError: before any forward pass (the latent's spatial size is unknown).
        """
        if not bool(self.latent_shape.any()):
            raise RuntimeError("sample needs the latent shape: call the model on data first")
        parameter = next(self.decoder.parameters())
        z = torch.randn(
            (check_positive_int("num_samples", num_samples), *self.latent_shape.tolist()),
            generator=generator, device=parameter.device, dtype=parameter.dtype,
        )  # fmt: skip
        return self.decoder(z)

    def extra_repr(self) -> str:
        return f"latent_channels={self.latent_channels}, kl_weight={self.kl_weight}"
