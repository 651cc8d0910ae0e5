"""Argument parsing and the four sub-commands of ``genlatent``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

EPILOG = """examples:
  genlatent train vae --dataset digits --out runs/digits-vae
  genlatent train vae --dataset mnist --data-dir ../shared/data/mnist --out runs/mnist-vae
  genlatent train vqvae --dataset cifar10 --data-dir ~/data --ema --out runs/cifar-vqvae
  genlatent train --resume runs/mnist-vae
  genlatent eval runs/mnist-vae --iwae-k 1000
  genlatent sample runs/mnist-vae -n 64 --out samples.png
  genlatent plot runs/mnist-vae
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``genlatent`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="genlatent",
        description="Train and inspect VAEs and VQ-VAEs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a reference model",
        description="Train the reference VAE or VQ-VAE. Unset options take the reference "
        "experiment's values (VAE: Adam 1e-3, batch 100, 30 epochs; VQ-VAE: Adam 2e-4, "
        "batch 128, 50 epochs).",
    )
    train.add_argument("model", nargs="?", choices=["vae", "vqvae"], help="what to train")
    train.add_argument(
        "--dataset",
        default="digits",
        choices=["mnist", "fashion-mnist", "cifar10", "digits"],
        help="digits (bundled with scikit-learn, no download) is the default",
    )
    train.add_argument("--data-dir", help="folder holding the dataset's official files")
    train.add_argument(
        "--download",
        action="store_true",
        help="fetch missing dataset files (SHA-256 verified) into --data-dir or the cache",
    )
    train.add_argument("--epochs", type=int, help="passes over the training set")
    train.add_argument("--batch-size", type=int, help="examples per step")
    train.add_argument("--lr", type=float, help="Adam learning rate")
    train.add_argument(
        "--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1..."
    )
    train.add_argument("--seed", type=int, default=0, help="seeds weights, batch order and noise")
    train.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    train.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    train.add_argument(
        "--skip-nonfinite",
        action="store_true",
        help="skip steps with a NaN/inf loss instead of stopping",
    )
    train.add_argument(
        "--compile", action="store_true", help="compile the model with torch.compile"
    )
    train.add_argument("--latent-dim", type=int, default=200, help="VAE latent size")
    train.add_argument(
        "--hidden-channels", type=int, help="VQ-VAE width (512 for CIFAR-10, else 64)"
    )
    train.add_argument("--codebook-size", type=int, default=512, help="VQ-VAE number of codes")
    train.add_argument("--embedding-dim", type=int, default=16, help="VQ-VAE code size")
    train.add_argument("--commitment-weight", type=float, default=0.25, help="VQ-VAE beta")
    train.add_argument("--ema", action="store_true", help="EMA codebook updates (VQ-VAE)")
    train.add_argument(
        "--restart-dead-codes",
        type=int,
        metavar="STEPS",
        help="re-seed codes unused for STEPS steps (VQ-VAE)",
    )
    train.add_argument("--train-limit", type=int, help="use only the first N training images")
    train.add_argument("--test-limit", type=int, help="use only the first N test images")
    train.add_argument("--out", help="run directory (default runs/<model>-<dataset>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("eval", help="evaluate a run on its test set")
    evaluate.add_argument("run_dir", help="a run directory")
    evaluate.add_argument(
        "--iwae-k",
        type=int,
        default=0,
        help="also the importance-weighted bound with K samples (VAE)",
    )
    evaluate.add_argument("--checkpoint", default="best", choices=["best", "last"])
    evaluate.add_argument("--data-dir", help="override the dataset folder stored in the run")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sample = commands.add_parser("sample", help="decode samples of a run into an image grid")
    sample.add_argument("run_dir", help="a run directory")
    sample.add_argument("-n", "--num", type=int, default=64, help="how many samples")
    sample.add_argument("--out", required=True, help="PNG file to write")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--checkpoint", default="best", choices=["best", "last"])

    plot = commands.add_parser("plot", help="loss curves, latent map, interpolation, code usage")
    plot.add_argument("run_dir", help="a run directory")
    plot.add_argument("--data-dir", help="override the dataset folder stored in the run")
    return parser


def _version() -> str:
    from genlatent import __version__

    return f"genlatent {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors print one line to stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"train": _train, "eval": _eval, "sample": _sample, "plot": _plot}[args.command](
            args
        )
    except KeyboardInterrupt:
        print("genlatent: interrupted; resume with --resume", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as error:
        print(f"genlatent {args.command}: error: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    from genlatent.train.config import TrainConfig
    from genlatent.train.runner import train

    progress = False if args.no_progress else None
    if args.resume:
        config = None
        if args.epochs is not None:
            from genlatent.train.rundir import RunDirectory

            config = RunDirectory(args.resume).read_config().replace(epochs=args.epochs)
        summary = train(config, args.resume, resume=True, show_progress=progress)
    else:
        if args.model is None:
            raise ValueError("train needs a model (vae or vqvae) unless --resume is given")
        config = TrainConfig(
            model=args.model,
            dataset=args.dataset,
            data_dir=args.data_dir,
            download=args.download,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            precision=args.precision,
            grad_clip=args.grad_clip,
            skip_nonfinite=args.skip_nonfinite,
            compile=args.compile,
            latent_dim=args.latent_dim,
            hidden_channels=args.hidden_channels,
            codebook_size=args.codebook_size,
            embedding_dim=args.embedding_dim,
            commitment_weight=args.commitment_weight,
            ema=args.ema,
            restart_dead_codes=args.restart_dead_codes,
            train_limit=args.train_limit,
            test_limit=args.test_limit,
        )
        out = args.out or f"runs/{args.model}-{args.dataset}"
        summary = train(config, out, show_progress=progress)
    run = summary.run_dir
    print(f"run directory: {run}")
    print(f"  metrics:         {run / 'metrics.jsonl'}")
    print(f"  checkpoints:     {run / 'checkpoints'}")
    print(f"  reconstructions: {run / 'reconstructions.png'}")
    print(f"  samples:         {run / 'samples.png'}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from genlatent.train.inspect import evaluate_run

    results = evaluate_run(
        args.run_dir, iwae_k=args.iwae_k, checkpoint=args.checkpoint, data_dir=args.data_dir
    )
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        width = max(map(len, results))
        for name, value in results.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            print(f"{name:<{width}}  {shown}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from genlatent.train.inspect import sample_run

    path = sample_run(
        args.run_dir, args.num, Path(args.out), seed=args.seed, checkpoint=args.checkpoint
    )
    print(f"wrote {path}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from genlatent.plotting import plot_run

    for path in plot_run(args.run_dir, data_dir=args.data_dir):
        print(f"wrote {path}")
    return 0
