"""A conditional VAE (Sohn et al. 2015) written as user code, trained by genlatent's trainer.

Nothing here comes from genlatent but the trainer: the model is plain PyTorch that follows
the model protocol (``loss(x, labels=...)`` returning a NamedTuple with a ``loss`` field,
``reconstruct`` and ``sample(num, *, labels, generator)``). The trainer passes the labels
because ``loss`` declares them, and draws one row of samples per class.

    python examples/conditional_vae.py --out runs/cvae-digits            # bundled digits
    genlatent train --model examples/conditional_vae.py:build --dataset mnist \\
        --data-dir DATA/mnist --epochs 5 --out runs/cvae-mnist  # real MNIST
    genlatent sample runs/cvae-mnist --out cvae.png                      # a row per class
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:model]
class CVAELoss(NamedTuple):
    loss: torch.Tensor  # negative ELBO, nats per example: what the trainer minimises
    reconstruction: torch.Tensor  # logged by name
    kl: torch.Tensor  # logged by name


class ConditionalVAE(nn.Module):
    """q(z | x, y) and p(x | z, y): the label is one-hot, joined to the input of both nets."""

    def __init__(self, image_shape: Sequence[int], num_classes: int, latent_dim: int = 16) -> None:
        super().__init__()
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        self.latent_dim = latent_dim
        pixels, hidden = math.prod(image_shape), 256
        self.encoder = nn.Sequential(
            nn.Linear(pixels + num_classes, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2 * latent_dim),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + num_classes, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, pixels),
        )  # fmt: skip

    def _decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = F.one_hot(labels, self.num_classes).to(z.dtype)
        return self.decoder(torch.cat([z, y], 1)).reshape(-1, *self.image_shape)

    def loss(self, x: torch.Tensor, *, labels: torch.Tensor) -> CVAELoss:
        y = F.one_hot(labels, self.num_classes).to(x.dtype)
        mean, log_var = self.encoder(torch.cat([x.flatten(1), y], 1)).chunk(2, dim=1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        logits = self._decode(z, labels)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        return CVAELoss((bce + kl).mean(), bce.mean(), kl.mean())

    def reconstruct(self, x: torch.Tensor, *, labels: torch.Tensor) -> torch.Tensor:
        y = F.one_hot(labels, self.num_classes).to(x.dtype)
        mean, _ = self.encoder(torch.cat([x.flatten(1), y], 1)).chunk(2, dim=1)
        return torch.sigmoid(self._decode(mean, labels))

    def sample(
        self, num: int, *, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        device = next(self.parameters()).device
        z = torch.randn(num, self.latent_dim, generator=generator, device=device)
        return torch.sigmoid(self._decode(z, labels.to(device)))


def build(image_shape: Sequence[int], num_classes: int | None) -> ConditionalVAE:
    """What ``genlatent train --model examples/conditional_vae.py:build`` calls."""
    if num_classes is None:
        raise ValueError("a conditional VAE needs labelled data")
    return ConditionalVAE(image_shape, num_classes)


# --8<-- [end:model]


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    from genlatent import fit
    from genlatent.data import load_digits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/cvae-digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    model = build(train.image_shape, 10)
    summary = fit(
        model, train, test, run_dir=args.out, epochs=args.epochs, batch_size=64, lr=2e-3,
        resume=args.resume,
    )  # fmt: skip
    return summary.last_metrics


if __name__ == "__main__":
    main()
