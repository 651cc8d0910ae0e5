"""Compose a convolutional VAE from genlatent's parts and train it.

`ConvEncoder` turns images into a grid of features; a small Gaussian head maps that grid
to the mean and log-variance of q(z | x); a projection maps a latent back to a grid, and
`ConvDecoder` upsamples it to Bernoulli logits. `VAE` ties them together.

    python examples/custom_conv_vae.py --data-dir DATA/mnist   # MNIST, 10 epochs
    python examples/custom_conv_vae.py --small                 # 8x8 digits, seconds
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from genlatent import VAE, ConvDecoder, ConvEncoder, GaussianParams
from genlatent.data import ImageDataset, as_batches, load_digits, load_mnist
from genlatent.metrics import VAEEvaluation, evaluate_vae


# --8<-- [start:head]
class GaussianHead(nn.Module):
    """Map conv features (B, C, h, w) to ``GaussianParams(mean, log_var)``, each (B, D)."""

    def __init__(self, in_channels: int, grid_size: tuple[int, int], latent_dim: int) -> None:
        super().__init__()
        features = in_channels * grid_size[0] * grid_size[1]
        self.mean = nn.Linear(features, latent_dim)
        self.log_var = nn.Linear(features, latent_dim)  # log sigma^2: any real value

    def forward(self, features: torch.Tensor) -> GaussianParams:
        flat = rearrange(features, "b c h w -> b (c h w)")
        return GaussianParams(mean=self.mean(flat), log_var=self.log_var(flat))


class LatentToGrid(nn.Module):
    """Map latents (B, D) to the (B, C, h, w) grid that `ConvDecoder` upsamples."""

    def __init__(self, latent_dim: int, out_channels: int, grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.grid_size = grid_size
        self.linear = nn.Linear(latent_dim, out_channels * grid_size[0] * grid_size[1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w = self.grid_size
        return rearrange(self.linear(z), "b (c h w) -> b c h w", h=h, w=w)


# --8<-- [end:head]


# --8<-- [start:model]
def build_conv_vae(
    image_shape: tuple[int, int, int],
    *,
    hidden_channels: int = 64,
    feature_channels: int = 16,
    latent_dim: int = 32,
) -> VAE:
    """A VAE whose encoder and decoder are genlatent's conv stacks, for (C, H, W) images."""
    channels, height, width = image_shape
    if height % 4 or width % 4:
        raise ValueError(f"image height and width must be divisible by 4, got {image_shape}")
    grid = (height // 4, width // 4)  # ConvEncoder downsamples 4x: 28x28 -> 7x7, 8x8 -> 2x2
    encoder = nn.Sequential(
        ConvEncoder(channels, hidden_channels, feature_channels),
        GaussianHead(feature_channels, grid, latent_dim),
    )
    decoder = nn.Sequential(
        LatentToGrid(latent_dim, feature_channels, grid),
        ConvDecoder(feature_channels, hidden_channels, channels),  # Bernoulli logits
    )
    return VAE(encoder, decoder, latent_dim=latent_dim)


# --8<-- [end:model]


@dataclass(frozen=True)
class Result:
    """What `main` returns: the model, the mean training loss of each epoch, the test scores."""

    model: VAE
    train_losses: list[float]
    test: VAEEvaluation


# --8<-- [start:train]
def train_loop(
    model: VAE,
    train_set: ImageDataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> list[float]:
    """Adam on the negative ELBO; returns each epoch's loss, averaged over examples."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = as_batches(train_set, batch_size, shuffle=True, generator=generator)
    losses = []
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        for batch in batches:
            loss = model.loss(batch.images, generator=generator)  # nats per image
            optimizer.zero_grad(set_to_none=True)
            loss.loss.backward()
            optimizer.step()
            total += loss.loss.item() * batch.images.shape[0]
            count += batch.images.shape[0]
        losses.append(total / count)
        print(f"epoch {epoch}: train -ELBO {losses[-1]:.2f} nats per image")
    return losses


# --8<-- [end:train]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: digits)")
    parser.add_argument("--small", action="store_true", help="the tests' tiny configuration")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--hidden-channels", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> Result:
    args = build_parser().parse_args(argv)
    if args.small:  # 8x8 digits bundled with scikit-learn, a narrow model, three epochs
        args.epochs, args.latent_dim, args.hidden_channels = 3, 8, 16
    if args.data_dir is not None:
        train_set = load_mnist(args.data_dir, split="train")
        test_set = load_mnist(args.data_dir, split="test")
    else:
        train_set, test_set = load_digits("train"), load_digits("test")
    print(f"training on {train_set}")

    # --8<-- [start:main]
    torch.manual_seed(args.seed)  # the initial weights
    generator = torch.Generator().manual_seed(args.seed)  # batch order and the VAE's noise
    model = build_conv_vae(
        train_set.image_shape, hidden_channels=args.hidden_channels, latent_dim=args.latent_dim
    )
    train_losses = train_loop(
        model,
        train_set,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        generator=generator,
    )
    test = evaluate_vae(model, as_batches(test_set, 500), generator=generator)
    print(f"test -ELBO {test.negative_elbo:.2f} nats per image, {test.bits_per_dim:.3f} bits/dim")
    # --8<-- [end:main]
    return Result(model, train_losses, test)


if __name__ == "__main__":
    main()
