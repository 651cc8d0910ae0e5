"""Train genlatent's reference models on a folder of your own images.

Each sub-folder of ``--images`` is a class (as torchvision's ``ImageFolder``); a flat
folder is one class. Images are resized to ``--size`` and held in memory as uint8.

    python examples/own_images.py --images ~/pictures/faces --size 32 --model vqvae
    python examples/own_images.py --images DIR --out RUN --small     # the tests' configuration
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from genlatent.data import ImageDataset, as_batches
from genlatent.metrics import Evaluation, VAEEvaluation, evaluate_model, evaluate_vae
from genlatent.models import VAE
from genlatent.train import RunSummary, TrainConfig, train

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# --8<-- [start:load]
def load_image_folder(
    folder: str | Path, *, size: int, mode: str = "RGB"
) -> tuple[ImageDataset, list[str]]:
    """Every image under ``folder`` as a uint8 ``ImageDataset``, and the class names.

    ``mode`` is Pillow's: ``"RGB"`` gives 3 channels, ``"L"`` 1 (greyscale).
    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    classes = sorted({p.relative_to(folder).parts[0] for p in files if p.parent != folder})
    images, labels = [], []
    for path in files:
        with Image.open(path) as image:
            pixels = image.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
        # (H, W, C) bytes -> (C, H, W) uint8, as every genlatent reader returns
        tensor = torch.frombuffer(bytearray(pixels.tobytes()), dtype=torch.uint8)
        images.append(tensor.reshape(size, size, -1).permute(2, 0, 1))
        in_class = path.parent != folder
        labels.append(classes.index(path.relative_to(folder).parts[0]) if in_class else 0)
    data = ImageDataset(torch.stack(images), torch.tensor(labels), name=folder.name)
    return data, classes


def split(
    data: ImageDataset, *, test_fraction: float, generator: torch.Generator
) -> tuple[ImageDataset, ImageDataset]:
    """A random ``(train, test)`` split with at least one test image."""
    order = torch.randperm(len(data), generator=generator)
    n_test = max(1, round(test_fraction * len(data)))
    test, train_ = order[:n_test], order[n_test:]
    return (
        ImageDataset(data.images[train_], data.labels[train_], name=f"{data.name}-train"),
        ImageDataset(data.images[test], data.labels[test], name=f"{data.name}-test"),
    )


# --8<-- [end:load]


@dataclass(frozen=True)
class Result:
    """What `main` returns: the data, the trainer's summary and the test-set scores."""

    train_set: ImageDataset
    test_set: ImageDataset
    classes: list[str]
    summary: RunSummary
    test: VAEEvaluation | Evaluation


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder of images, one sub-folder a class")
    parser.add_argument("--size", type=int, default=32, help="resize to SIZE x SIZE")
    parser.add_argument("--grey", action="store_true", help="convert to one channel")
    parser.add_argument("--model", default="vae", choices=["vae", "vqvae"])
    parser.add_argument("--epochs", type=int, help="default: the reference experiment's")
    parser.add_argument("--out", default="runs/own-images", help="run directory")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="the tests' tiny configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> Result:
    args = build_parser().parse_args(argv)
    # --8<-- [start:train]
    data, classes = load_image_folder(args.images, size=args.size, mode="L" if args.grey else "RGB")
    generator = torch.Generator().manual_seed(args.seed)
    train_set, test_set = split(data, test_fraction=0.1, generator=generator)
    print(f"{len(train_set)} training and {len(test_set)} test images, classes {classes}")

    config = TrainConfig(model=args.model, epochs=args.epochs, device=args.device, seed=args.seed)
    if args.small:  # each preset refuses the other's size options
        size = {"latent_dim": 16} if args.model == "vae" else {"hidden_channels": 16}
        config = config.replace(epochs=2, batch_size=8, **size)
    summary = train(config, args.out, datasets=(train_set, test_set), show_progress=False)
    # --8<-- [end:train]

    # --8<-- [start:evaluate]
    device = next(summary.model.parameters()).device
    test_batches = as_batches(test_set, batch_size=256, device=device)
    test: VAEEvaluation | Evaluation
    if isinstance(summary.model, VAE):
        test = vae_scores = evaluate_vae(summary.model, test_batches)
        print(f"test -ELBO {vae_scores.negative_elbo:.1f} nats per image")
    else:
        test = vq_scores = evaluate_model(summary.model, test_batches)
        print(f"test PSNR {vq_scores.psnr:.2f} dB, codes used {vq_scores.fraction_used:.0%}")
    # --8<-- [end:evaluate]
    return Result(train_set, test_set, classes, summary, test)


if __name__ == "__main__":
    main()
