"""The variational autoencoder: an encoder to a Gaussian posterior and a decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from genlatent._validation import check_positive_int
from genlatent.functional.gaussian import reparameterize
from genlatent.losses.elbo import LIKELIHOODS, VAELoss, vae_loss

__all__ = ["VAE", "VAEOutput"]


class VAEOutput(NamedTuple):
    """What `VAE.forward` returns."""

    logits: torch.Tensor
    """Decoder output for the sampled latent: Bernoulli logits (or a Gaussian mean)."""
    mean: torch.Tensor
    r"""Posterior mean $\mu$, shape $(B, D)$."""
    log_var: torch.Tensor
    r"""Posterior log-variance $\log\sigma^2$, shape $(B, D)$."""
    z: torch.Tensor
    r"""The reparameterized sample $z = \mu + \sigma \odot \varepsilon$, shape $(B, D)$."""


class VAE(nn.Module):
    r"""Variational autoencoder (Kingma and Welling 2014) from any encoder and decoder.

    The encoder maps $x$ to ``(mean, log_var)`` of $q(z \mid x)$; the decoder maps $z$ to
    the parameters of $p(x \mid z)$ (logits for the default Bernoulli likelihood). The
    prior is $\mathcal{N}(0, I)$.

    Args:
        encoder: a module returning a pair ``(mean, log_var)``, each $(B, D)$, such as
            `MLPEncoder`.
        decoder: a module mapping $(B, D)$ latents to the data's shape, such as `MLPDecoder`.
        latent_dim: $D$; read from ``decoder.latent_dim`` when not given.
        likelihood: ``"bernoulli"`` (decoder gives logits) or ``"gaussian"`` (decoder gives
            the mean of a unit-variance Gaussian); used by `loss`, `sample`, `reconstruct`.

    Raises:
        TypeError: if ``encoder`` or ``decoder`` is not an ``nn.Module``.
        ValueError: on an unknown ``likelihood`` or a ``latent_dim`` below 1 or missing.

    Example:
        >>> import torch
        >>> from genlatent import MLPDecoder, MLPEncoder
        >>> vae = VAE(MLPEncoder(784, 400, 20), MLPDecoder(20, 400, 784, out_shape=(1, 28, 28)))
        >>> x = torch.rand(16, 1, 28, 28)
        >>> vae(x).logits.shape
        torch.Size([16, 1, 28, 28])
        >>> vae.loss(x).loss.shape
        torch.Size([])
        >>> vae.sample(4).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        latent_dim: int | None = None,
        likelihood: str = "bernoulli",
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        if latent_dim is None:
            latent_dim = getattr(decoder, "latent_dim", None)
            if latent_dim is None:
                raise ValueError(
                    "latent_dim must be given when the decoder has no latent_dim attribute"
                )
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.likelihood = likelihood

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the posterior's ``(mean, log_var)`` for ``x``."""
        mean, log_var = self.encoder(x)
        return mean, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return the decoder's output (logits, or a Gaussian mean) for latents ``z``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, draw one reparameterized latent per example, and decode it."""
        mean, log_var = self.encode(x)
        z = reparameterize(mean, log_var, generator=generator)
        return VAEOutput(self.decode(z), mean, log_var, z)

    def loss(
        self,
        x: torch.Tensor,
        *,
        beta: float = 1.0,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
    ) -> VAELoss:
        """The single-sample negative ELBO of ``x`` (see `vae_loss`)."""
        out = self(x, generator=generator)
        return vae_loss(
            x,
            out.logits,
            out.mean,
            out.log_var,
            beta=beta,
            likelihood=self.likelihood,
            reduction=reduction,
        )

    def _mean_of_output(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output

    def sample(
        self,
        num_samples: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        r"""Decode $z \sim \mathcal{N}(0, I)$ into data-space means.

        Returns probabilities in $[0, 1]$ for the Bernoulli likelihood (the image one
        would show), the Gaussian mean otherwise. Drawn on the model's device and dtype.

        Shape:
            - output: $(N, *)$, the decoder's output shape.
        """
        check_positive_int("num_samples", num_samples)
        reference = next(self.decoder.parameters())
        z = torch.randn(
            num_samples,
            self.latent_dim,
            generator=generator,
            device=reference.device,
            dtype=reference.dtype,
        )
        return self._mean_of_output(self.decode(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of ``x``: a deterministic reconstruction in data space."""
        mean, _ = self.encode(x)
        return self._mean_of_output(self.decode(mean))

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, likelihood={self.likelihood!r}"
