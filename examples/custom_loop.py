"""Use genlatent's parts inside a plain PyTorch training loop: a VAE and a VQ-VAE.

No trainer: the loop is yours. The VAE's loss is `VAE.loss` (the negative ELBO); the
VQ-VAE is put together by hand from `ConvEncoder`, `VectorQuantizer` and `ConvDecoder`,
and its loss is written out: reconstruction error plus the quantizer's codebook and
commitment terms (VQ-VAE eq. 3).

    python examples/custom_loop.py --data-dir DATA/mnist   # MNIST
    python examples/custom_loop.py --small                           # 8x8 digits, seconds
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlatent import VAE, ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder, VectorQuantizer
from genlatent.data import ImageDataset, as_batches, load_digits, load_mnist
from genlatent.metrics import code_usage


@dataclass(frozen=True)
class VQRun:
    """The VQ-VAE's parts after training, and its test scores after each epoch."""

    encoder: ConvEncoder
    quantizer: VectorQuantizer
    decoder: ConvDecoder
    test_mse: list[float]
    perplexities: list[float]


@dataclass(frozen=True)
class Result:
    """What `main` returns: the VAE's test loss after each epoch, and the VQ-VAE run."""

    vae_test_losses: list[float]
    vqvae: VQRun


# --8<-- [start:vae]
def train_vae(
    train_set: ImageDataset,
    test_set: ImageDataset,
    *,
    epochs: int,
    latent_dim: int,
    generator: torch.Generator,
) -> list[float]:
    """The MLP VAE trained on the negative ELBO; returns the test loss after each epoch."""
    features = math.prod(train_set.image_shape)  # C * H * W
    model = VAE(
        MLPEncoder(features, 400, latent_dim),
        MLPDecoder(latent_dim, 400, features, out_shape=train_set.image_shape),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    test_losses = []
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in as_batches(train_set, 100, shuffle=True, generator=generator):
            loss = model.loss(batch.images, generator=generator).loss  # nats per image
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        model.eval()
        total = 0.0
        with torch.no_grad():
            for batch in as_batches(test_set, 500):
                total += model.loss(batch.images, reduction="sum", generator=generator).loss.item()
        test_losses.append(total / len(test_set))  # summed, then divided by the count
        print(f"VAE epoch {epoch}: test -ELBO {test_losses[-1]:.2f} nats per image")
    return test_losses


# --8<-- [end:vae]


# --8<-- [start:vqvae]
def train_vqvae(
    train_set: ImageDataset,
    test_set: ImageDataset,
    *,
    epochs: int,
    hidden_channels: int,
    generator: torch.Generator,
) -> VQRun:
    """Encoder, EMA quantizer and decoder trained on MSE + the quantizer's loss."""
    channels = train_set.num_channels
    encoder = ConvEncoder(channels, hidden_channels, 8)
    # re-seed codes no vector chose for 5 steps: without it this small model collapses
    # onto a single code (perplexity 1)
    quantizer = VectorQuantizer(64, 8, ema=True, decay=0.9, restart_dead_codes=5)
    decoder = ConvDecoder(8, hidden_channels, channels)
    parts = nn.ModuleList([encoder, quantizer, decoder])
    # with ema=True the codebook is a buffer, so parameters() holds only the conv weights
    optimizer = torch.optim.Adam(parts.parameters(), lr=1e-3)
    test_mse, perplexities = [], []
    for epoch in range(1, epochs + 1):
        parts.train()  # the EMA codebook moves only in training steps
        for batch in as_batches(train_set, 100, shuffle=True, generator=generator):
            q = quantizer(encoder(batch.images))  # q.quantized: straight-through gradient
            reconstruction = decoder(q.quantized)
            loss = F.mse_loss(reconstruction, batch.images) + q.loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        parts.eval()
        squared_error, counts = 0.0, torch.zeros(quantizer.codebook_size)
        with torch.no_grad():
            for batch in as_batches(test_set, 500):
                q = quantizer(encoder(batch.images))
                reconstruction = decoder(q.quantized)
                squared_error += F.mse_loss(reconstruction, batch.images, reduction="sum").item()
                counts += q.counts  # how many positions chose each code in this batch
        test_mse.append(squared_error / test_set.images.numel())  # per pixel value
        _, perplexity = code_usage(counts)  # (fraction of codes used, perplexity in [1, K])
        perplexities.append(perplexity)
        print(
            f"VQ-VAE epoch {epoch}: test MSE {test_mse[-1]:.4f}, perplexity {perplexities[-1]:.1f}"
        )
    return VQRun(encoder, quantizer, decoder, test_mse, perplexities)


# --8<-- [end:vqvae]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: digits)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="the tests' tiny configuration")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> Result:
    args = build_parser().parse_args(argv)
    if args.data_dir is not None:
        train_set = load_mnist(args.data_dir, split="train")
        test_set = load_mnist(args.data_dir, split="test")
    else:
        train_set, test_set = load_digits("train"), load_digits("test")
    epochs, hidden_channels = (3, 16) if args.small else (args.epochs, 64)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    vae_losses = train_vae(train_set, test_set, epochs=epochs, latent_dim=8, generator=generator)
    vq = train_vqvae(
        train_set, test_set, epochs=epochs, hidden_channels=hidden_channels, generator=generator
    )
    return Result(vae_losses, vq)


if __name__ == "__main__":
    main()
