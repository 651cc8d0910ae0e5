"""Train the reference VQ-VAE on CIFAR-10 with genlatent's trainer, then score it.

The official python version of CIFAR-10 (``cifar-10-python.tar.gz``, or the
``cifar-10-batches-py/`` folder it unpacks to) is read from ``--data-dir``:

    python examples/cifar10_vqvae.py --data-dir ~/data --download     # 50 epochs, a GPU helps
    python examples/cifar10_vqvae.py --data-dir DIR --small           # the tests' configuration
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from genlatent import VQVAE
from genlatent.data import ImageDataset, as_batches, fetch, load_cifar10
from genlatent.metrics import Evaluation, evaluate_model
from genlatent.train import RunSummary, TrainConfig, train


@dataclass(frozen=True)
class Result:
    """What `main` returns: the trainer's summary and the test-set scores."""

    summary: RunSummary
    test: Evaluation


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder holding CIFAR-10")
    parser.add_argument("--download", action="store_true", help="fetch CIFAR-10 if missing")
    parser.add_argument("--out", default="runs/cifar10-vqvae", help="run directory")
    parser.add_argument("--ema", action="store_true", help="EMA codebook (appendix A.1)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    parser.add_argument("--small", action="store_true", help="the tests' tiny configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> Result:
    args = build_parser().parse_args(argv)
    if args.download:
        fetch("cifar10", args.data_dir)  # verified by SHA-256; a no-op when the file is there

    # --8<-- [start:config]
    config = TrainConfig(
        model="vqvae",
        dataset="cifar10",
        data_dir=args.data_dir,
        ema=args.ema,
        device=args.device,
        # unset: Adam 2e-4, batch 128, 50 epochs, 512 hidden channels, 512 codes of
        # 16 dims, commitment weight 0.25: the reference experiment, `cifar10_vqvae()`
    )
    if args.small:  # a narrow model for a few seconds on a CPU
        config = config.replace(
            epochs=2,
            batch_size=8,
            lr=1e-3,
            hidden_channels=16,
            codebook_size=32,
            embedding_dim=8,
            train_limit=32,
            test_limit=8,
        )
    summary = train(config, args.out, show_progress=not args.small)
    # --8<-- [end:config]

    # --8<-- [start:evaluate]
    test_set = load_cifar10(args.data_dir, split="test")
    if config.test_limit is not None:  # the same images the trainer tested on
        n = config.test_limit
        test_set = ImageDataset(test_set.images[:n], test_set.labels[:n], name="cifar10-test")
    model = summary.model  # the trained VQVAE
    if not isinstance(model, VQVAE):
        raise TypeError(f"expected the trainer to return a VQVAE, got {type(model).__name__}")
    device = next(model.parameters()).device
    test = evaluate_model(model, as_batches(test_set, 500, device=device))
    print(
        f"test MSE {test.mse:.5f}, PSNR {test.psnr:.2f} dB, "
        f"codes used {test.fraction_used:.0%}, perplexity {test.perplexity:.1f}"
    )
    # --8<-- [end:evaluate]
    return Result(summary, test)


if __name__ == "__main__":
    main()
