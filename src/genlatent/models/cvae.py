"""The conditional VAE (Sohn et al. 2015): encoder and decoder both see the class label."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genlatent._validation import check_finite, check_positive_int
from genlatent.functional.gaussian import reparameterize
from genlatent.functional.likelihood import (
    check_likelihood,
    decoder_channels,
    fit_decoder_output,
    likelihood_mean,
)
from genlatent.losses.elbo import VAELoss
from genlatent.models.vae import VAEOutput, _check_posterior, negative_elbo
from genlatent.nn._activation import ActivationSpec
from genlatent.nn.mlp import MLPDecoder, MLPEncoder
from genlatent.pretrained import PretrainedMixin

__all__ = ["ConditionalVAE"]


class ConditionalVAE(nn.Module, PretrainedMixin):
    r"""Conditional VAE (Sohn et al. 2015): label-conditioned encoder, decoder and samples.

    The label $y \in \{0, \dots, C-1\}$ enters both networks as a one-hot vector joined
    to their input: the encoder sees ``cat(x.flatten(1), onehot(y))`` ($F + C$ features)
    and the decoder ``cat(z, onehot(y))`` ($D + C$). The objective is the conditional
    ELBO $\mathbb{E}_q[\log p(x \mid z, y)] - \mathrm{KL}(q(z \mid x, y) \,\|\, p(z))$,
    computed by `vae_loss`, so ``beta``, warm-up, free bits and capacity apply as for
    `VAE`. Samples for chosen classes are $z \sim \mathcal{N}(0, I)$ decoded with their
    label, which the trainer shows as one row per class.

    Build one from the library's MLP blocks with `ConditionalVAE.mlp`, or pass any encoder
    (taking $(B, F + C)$, returning ``(mean, log_var)``) and decoder (taking $(B, D + C)$).

    Args:
        encoder: maps $(B, F + C)$ to ``(mean, log_var)``, each $(B, D)$.
        decoder: maps $(B, D + C)$ to the likelihood's parameters, reshaped to the data's
            shape as in `VAE`.
        num_classes: $C \ge 1$.
        latent_dim: $D$; read from ``decoder.latent_dim`` minus $C$ when not given.
        likelihood: ``"bernoulli"``, ``"gaussian"`` or ``"continuous_bernoulli"`` (see `VAE`).

    Raises:
        TypeError: if ``encoder`` or ``decoder`` is not an ``nn.Module``.
        ValueError: on an unknown or multi-channel ``likelihood``, or a bad size.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = ConditionalVAE.mlp((1, 28, 28), num_classes=10, latent_dim=8)
        >>> x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
        >>> model.loss(x, labels=y).loss.shape
        torch.Size([])
        >>> model.sample(3, labels=torch.tensor([7, 7, 7])).shape
        torch.Size([3, 1, 28, 28])
    """

    loss_unit = "nats/image"
    """What the loss terms are measured in: nats per image (summed over its pixels)."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        num_classes: int,
        *,
        latent_dim: int | None = None,
        likelihood: str = "bernoulli",
    ) -> None:
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        self.num_classes = check_positive_int("num_classes", num_classes)
        if latent_dim is None:
            joined = getattr(decoder, "latent_dim", None)
            if joined is None:
                raise ValueError(
                    "latent_dim must be given when the decoder has no latent_dim attribute"
                )
            latent_dim = joined - num_classes
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.likelihood = check_likelihood(likelihood)
        if decoder_channels(likelihood, 1) != 1:
            raise ValueError(
                f"ConditionalVAE takes one-parameter likelihoods, got {likelihood!r} "
                "(which needs several decoder outputs per value)"
            )
        self.encoder, self.decoder = encoder, decoder

    @classmethod
    def mlp(
        cls,
        image_shape: Sequence[int],
        num_classes: int,
        *,
        hidden_features: int | Sequence[int] = (400, 400),
        latent_dim: int = 16,
        activation: ActivationSpec = None,
        likelihood: str = "bernoulli",
    ) -> ConditionalVAE:
        """A conditional VAE from `MLPEncoder` and `MLPDecoder` for examples of ``image_shape``."""
        features = math.prod(image_shape)
        num_classes = check_positive_int("num_classes", num_classes)
        return cls(
            MLPEncoder(features + num_classes, hidden_features, latent_dim, activation=activation),
            MLPDecoder(
                latent_dim + num_classes,
                hidden_features,
                features,
                out_shape=tuple(image_shape),
                activation=activation,
            ),
            num_classes,
            latent_dim=latent_dim,
            likelihood=likelihood,
        )

    def _one_hot(self, labels: torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
        if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point:
            got = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise TypeError(f"labels must be an integer tensor of class indices, got {got}")
        if labels.shape != (batch,):
            raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
        if labels.numel() and not (int(labels.min()) >= 0 and int(labels.max()) < self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}), got values in "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        return F.one_hot(labels.to(like.device).long(), self.num_classes).to(like.dtype)

    def encode(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's ``(mean, log_var)``, each $(B, D)$, of ``x`` with ``labels``."""
        check_finite("x", x)
        joined = torch.cat([x.flatten(1), self._one_hot(labels, x.shape[0], x)], dim=1)
        return _check_posterior(self.encoder(joined), x, self.latent_dim, type(self.encoder))

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The decoder's output (logits for the Bernoulli) for latents ``z`` with ``labels``."""
        return self.decoder(torch.cat([z, self._one_hot(labels, z.shape[0], z)], dim=1))

    def forward(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> VAEOutput:
        """Encode with the label, draw one reparameterized latent, decode it with the label."""
        mean, log_var = self.encode(x, labels)
        z = reparameterize(mean, log_var, generator=generator)
        return VAEOutput(fit_decoder_output(self.decode(z, labels), x), mean, log_var, z)

    def loss(
        self,
        x: torch.Tensor,
        *,
        labels: torch.Tensor,
        step: int | None = None,
        beta: float = 1.0,
        free_bits: float = 0.0,
        warmup_steps: int = 0,
        capacity: float | None = None,
        gamma: float | None = None,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
    ) -> VAELoss:
        """The single-sample negative conditional ELBO (`vae_loss`, in float32)."""
        out = self(x, labels, generator=generator)
        return negative_elbo(
            x, out, self.likelihood, beta=beta, free_bits=free_bits, warmup_steps=warmup_steps,
            step=step, capacity=capacity, gamma=gamma, reduction=reduction,
        )  # fmt: skip

    def sample(
        self,
        num_samples: int,
        *,
        labels: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode $z \\sim \\mathcal{N}(0, I)$ with ``labels`` $(N,)$ into data-space means."""
        check_positive_int("num_samples", num_samples)
        reference = next(self.decoder.parameters())
        z = torch.randn(
            num_samples, self.latent_dim, generator=generator, device=reference.device,
            dtype=reference.dtype,
        )  # fmt: skip
        return likelihood_mean(self.decode(z, labels), self.likelihood)

    def reconstruct(self, x: torch.Tensor, *, labels: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of ``x`` given its labels, shaped like ``x``."""
        mean, _ = self.encode(x, labels)
        return likelihood_mean(fit_decoder_output(self.decode(mean, labels), x), self.likelihood)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, latent_dim={self.latent_dim}, "
            f"likelihood={self.likelihood!r}"
        )
