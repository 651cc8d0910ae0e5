"""Evaluate a VAE with the importance-weighted bound (Burda et al. 2016) beside the ELBO.

Trains the reference VAE with genlatent's trainer, then reports the test negative ELBO
and the IWAE estimate of -log p(x) for a growing number of importance samples k.

    python examples/evaluate_iwae.py --data-dir DATA/mnist --iwae-k 1000  # MNIST
    python examples/evaluate_iwae.py --small                                         # digits
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genlatent.data import ImageDataset, as_batches, dataset_by_name
from genlatent.metrics import VAEEvaluation, evaluate_vae, iwae_bound
from genlatent.models import VAE
from genlatent.train import TrainConfig, train


@dataclass(frozen=True)
class Result:
    """What `main` returns: the whole-set scores and -L_k averaged over the test set per k."""

    evaluation: VAEEvaluation
    nll_by_k: dict[int, float]


# --8<-- [start:sweep]
@torch.no_grad()
def iwae_nll_by_k(
    model: VAE, test_set: ImageDataset, ks: Sequence[int], *, seed: int
) -> dict[int, float]:
    """-L_k in nats per example for each k: an upper bound on -log p(x) that falls with k."""
    model.eval()
    device = next(model.parameters()).device
    result = {}
    for k in ks:
        generator = torch.Generator(device=device).manual_seed(seed)
        total = 0.0
        for batch in as_batches(test_set, batch_size=100, device=device):
            bound = iwae_bound(model, batch.images, num_samples=k, generator=generator)  # (B,)
            total += -bound.sum().item()
        result[k] = total / len(test_set)
    return result


# --8<-- [end:sweep]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: digits)")
    parser.add_argument("--iwae-k", type=int, default=1000, help="importance samples")
    parser.add_argument("--out", default="runs/iwae-vae", help="run directory")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1...")
    parser.add_argument("--small", action="store_true", help="the tests' tiny configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> Result:
    args = build_parser().parse_args(argv)
    # --8<-- [start:train]
    dataset = "digits" if args.data_dir is None else "mnist"
    config = TrainConfig(model="vae", dataset=dataset, data_dir=args.data_dir, device=args.device)
    if args.small:  # five epochs of a small latent on the 8x8 digits
        config = config.replace(epochs=5, latent_dim=8, test_limit=100)
        args.iwae_k = 64
    summary = train(config, args.out, show_progress=not args.small)
    model = summary.model
    if not isinstance(model, VAE):
        raise TypeError(f"expected the trainer to return a VAE, got {type(model).__name__}")
    # --8<-- [end:train]

    # --8<-- [start:evaluate]
    test_set = dataset_by_name(dataset, split="test", root=args.data_dir)
    n = config.test_limit or len(test_set)  # the trainer's test images
    test_set = ImageDataset(test_set.images[:n], test_set.labels[:n], name=test_set.name)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(0)
    evaluation = evaluate_vae(
        model,
        as_batches(test_set, batch_size=100, device=device),
        iwae_samples=args.iwae_k,
        generator=generator,
    )
    print(
        f"test -ELBO {evaluation.negative_elbo:.2f} nats "
        f"(reconstruction {evaluation.reconstruction_loss:.2f} + KL {evaluation.kl:.2f}); "
        f"IWAE k={args.iwae_k}: {evaluation.iwae_nll:.2f} nats, "
        f"{evaluation.iwae_bits_per_dim:.4f} bits/dim"
    )
    ks = sorted({k for k in (1, 10, 100) if k < args.iwae_k} | {args.iwae_k})
    nll_by_k = iwae_nll_by_k(model, test_set, ks, seed=1)
    for k, nll in nll_by_k.items():
        print(f"k = {k:>4}: -L_k = {nll:.2f} nats per example")
    # --8<-- [end:evaluate]
    return Result(evaluation, nll_by_k)


if __name__ == "__main__":
    main()
