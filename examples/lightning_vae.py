"""Train a genlatent VAE with PyTorch Lightning (``pip install "genlatent[lightning]"``).

A `LightningModule` holds any genlatent `VAE`; its steps call `VAE.loss`, the negative
ELBO in nats per image. Lightning owns the loop, devices and logging.

    python examples/lightning_vae.py --data-dir DATA/mnist   # MNIST, 30 epochs
    python examples/lightning_vae.py --small                           # 8x8 digits, seconds
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from genlatent import VAE, MLPDecoder, MLPEncoder, mnist_vae
from genlatent.data import ImageDataset, load_digits, load_mnist


# --8<-- [start:module]
class LitVAE(L.LightningModule):
    """A genlatent `VAE` as a LightningModule: Adam on the negative ELBO."""

    def __init__(self, model: VAE, *, lr: float = 1e-3, beta: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.beta = beta

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        (x,) = batch
        loss = self.model.loss(x, beta=self.beta)  # VAELoss(loss, reconstruction, kl)
        self.log("train_loss", loss.loss, batch_size=len(x), prog_bar=True)
        self.log("train_kl", loss.kl, batch_size=len(x))
        return loss.loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        (x,) = batch
        # logged per batch, averaged over the epoch weighted by batch_size
        self.log("val_loss", self.model.loss(x).loss, batch_size=len(x), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


# --8<-- [end:module]


# --8<-- [start:data]
def loader(data: ImageDataset, batch_size: int, *, shuffle: bool) -> DataLoader:
    """uint8 images (N, C, H, W) -> a DataLoader of float batches in [0, 1]."""
    images = data.images.float() / 255
    return DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=shuffle)


# --8<-- [end:data]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: digits)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--small", action="store_true", help="the tests' tiny configuration")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train, then return Lightning's last logged metrics as floats."""
    args = build_parser().parse_args(argv)
    if args.data_dir is not None:
        train_set = load_mnist(args.data_dir, split="train")
        test_set = load_mnist(args.data_dir, split="test")
    else:
        train_set, test_set = load_digits("train"), load_digits("test")

    # --8<-- [start:fit]
    L.seed_everything(args.seed, verbose=False)
    if args.data_dir is not None:
        model = mnist_vae()  # the reference 784-400-400-200 VAE
    else:  # the 8x8 digits: 64 pixels, an 8-dim latent
        model = VAE(MLPEncoder(64, 400, 8), MLPDecoder(8, 400, 64, out_shape=(1, 8, 8)))
    trainer = L.Trainer(
        max_epochs=3 if args.small else args.epochs,
        accelerator="auto",
        logger=False,  # or a TensorBoardLogger, CSVLogger...
        enable_checkpointing=not args.small,
        enable_progress_bar=not args.small,
        enable_model_summary=not args.small,
    )
    trainer.fit(
        LitVAE(model),
        train_dataloaders=loader(train_set, 100, shuffle=True),
        val_dataloaders=loader(test_set, 500, shuffle=False),
    )
    # --8<-- [end:fit]
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    print(", ".join(f"{name} {value:.2f}" for name, value in sorted(metrics.items())))
    return metrics


if __name__ == "__main__":
    main()
