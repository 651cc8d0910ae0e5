"""The variational autoencoder: an encoder to a Gaussian posterior and a decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from genlatent._validation import check_positive_int
from genlatent.functional.gaussian import reparameterize
from genlatent.functional.likelihood import check_likelihood, likelihood_mean
from genlatent.losses.elbo import VAELoss, vae_loss

__all__ = ["VAE", "VAEOutput"]


class VAEOutput(NamedTuple):
    """What `VAE.forward` returns."""

    decoder_output: torch.Tensor
    """The likelihood's parameters for the sampled latent, shaped like ``x``: Bernoulli
    logits (``likelihood="bernoulli"``) or the Gaussian mean (``"gaussian"``)."""
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
        >>> vae(x).decoder_output.shape
        torch.Size([16, 1, 28, 28])
        >>> vae.loss(x).loss.shape
        torch.Size([])
        >>> vae.loss(x.flatten(1)).loss.shape  # flat inputs work too
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
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.likelihood = check_likelihood(likelihood)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the posterior's ``(mean, log_var)`` for ``x``, each $(B, D)$.

        Raises:
            TypeError: if the encoder does not return a pair of tensors.
            ValueError: if ``mean`` or ``log_var`` is not $(B, D)$ with $B$ = ``x.shape[0]``.
        """
        return _check_posterior(self.encoder(x), x, self.latent_dim, type(self.encoder))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return the decoder's output (logits, or a Gaussian mean) for latents ``z``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, draw one reparameterized latent per example, and decode it.

        The decoder's output is reshaped to ``x``'s shape when it holds as many values
        per example, so flat $(B, 784)$ and image $(B, 1, 28, 28)$ inputs both work.
        """
        mean, log_var = self.encode(x)
        z = reparameterize(mean, log_var, generator=generator)
        return VAEOutput(_like(self.decode(z), x), mean, log_var, z)

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
        # the bound is computed in float32 whatever the autocast dtype
        return vae_loss(
            x.float(),
            out.decoder_output.float(),
            out.mean.float(),
            out.log_var.float(),
            beta=beta,
            likelihood=self.likelihood,
            reduction=reduction,
        )

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
        return likelihood_mean(self.decode(z), self.likelihood)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of ``x``: a deterministic reconstruction shaped like ``x``."""
        mean, _ = self.encode(x)
        return likelihood_mean(_like(self.decode(mean), x), self.likelihood)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, likelihood={self.likelihood!r}"


def _like(output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``output`` in ``x``'s shape when both hold as many values per example."""
    if output.shape != x.shape and output.shape[1:].numel() == x.shape[1:].numel():
        return output.reshape(x.shape)
    return output


def _check_posterior(
    output: object, x: torch.Tensor, latent_dim: int, encoder: type
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's ``(mean, log_var)``, checked to be two $(B, D)$ tensors."""
    name = encoder.__name__
    if not (
        isinstance(output, (tuple, list))
        and len(output) == 2
        and all(isinstance(t, torch.Tensor) for t in output)
    ):
        got = type(output).__name__
        if isinstance(output, torch.Tensor):
            got = f"one tensor of shape {tuple(output.shape)}"
        raise TypeError(
            f"the encoder ({name}) must return a pair (mean, log_var) of tensors, got {got}"
        )
    mean, log_var = output
    expected = (x.shape[0], latent_dim) if x.ndim else None
    for label, tensor in (("mean", mean), ("log_var", log_var)):
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"the encoder ({name}) must return {label} of shape (B, latent_dim) = "
                f"{expected}, got {tuple(tensor.shape)}"
            )
    return mean, log_var
