"""The IWAE paper's MNIST table, reproduced at a CPU budget: VAE, IWAE k=5 and k=50, VampPrior.

The one-stochastic-layer model of Burda et al. (2016, section 5): 784-200-200-50 with tanh,
Bernoulli decoder, trained on dynamically binarized MNIST (a fresh draw of every training
image each epoch, the test set drawn once with seed 0), Adam (lr 1e-3, batch 100). After the
last epoch the test negative log-likelihood is estimated with 5,000 importance samples
(-L_5000, Burda et al.'s evaluation) on all 10,000 test images. Every epoch appends the
test negative ELBO to ``metrics.jsonl`` (the curve); ``result.json`` holds the final numbers.

    python scripts/results_literature.py vae --epochs 30 --out docs/data/literature/vae
    python scripts/results_literature.py iwae50 --epochs 30 --out docs/data/literature/iwae50

``--resume`` continues a run directory to more epochs (the checkpoint holds the weights,
the optimiser and every generator, so the continuation is the run that would have been).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from genlatent import MLPDecoder, MLPEncoder
from genlatent.data import TensorBatches, binarized_mnist, load_mnist
from genlatent.metrics import iwae_bound
from genlatent.models import VAE, VampPrior

OBJECTIVES = {"vae": 1, "iwae5": 5, "iwae50": 50, "vamp": 1}
"""Each run's importance samples in training (1 is the ELBO)."""


def build(objective: str, train_images: torch.Tensor) -> VAE:
    """784-200-200-50, tanh, Bernoulli; the VampPrior run has K = 500 pseudo-inputs.

    The decoder's output bias starts at the logits of the training set's mean pixel, as
    in Burda et al.'s code: without it the tanh network spends its first epochs learning
    the mean image and its posteriors collapse meanwhile (the VampPrior's every one).
    The pseudo-inputs start as 500 training images (grey levels) picked by the global RNG.
    """
    encoder = MLPEncoder(784, (200, 200), 50, activation=nn.Tanh())
    decoder = MLPDecoder(50, (200, 200), 784, activation=nn.Tanh(), out_shape=(784,))
    mean_pixel = train_images.float().div(255).flatten(1).mean(0).clamp(1e-3, 1 - 1e-3)
    with torch.no_grad():
        decoder.out.bias.copy_(torch.logit(mean_pixel))
    prior = None
    if objective == "vamp":
        pick = torch.randperm(len(train_images))[:500]
        prior = VampPrior(500, (784,), init=train_images[pick].float().div(255).flatten(1))
    return VAE(encoder, decoder, likelihood="bernoulli", prior=prior)


@torch.no_grad()
def test_scores(
    model: VAE, test: torch.Tensor, *, num_samples: int, seed: int
) -> tuple[float, float]:
    """(-ELBO, -L_k) in nats per example over ``test``, both with a seeded generator."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    elbo = bound = 0.0
    for x, _ in TensorBatches(test, batch_size=100):
        elbo += model.loss(x, reduction="sum", generator=generator).elbo_loss.item()
        if num_samples:
            bound -= iwae_bound(model, x, num_samples=num_samples, generator=generator).sum().item()
    model.train()
    return elbo / len(test), bound / len(test)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("objective", choices=sorted(OBJECTIVES))
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    data = binarized_mnist(args.data_dir, batch_size=100, seed=0, generator=generator)
    model = build(args.objective, load_mnist(args.data_dir, split="train").images)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    test = data.test.images.float().div(255).flatten(1)
    start, elapsed = 0, 0.0
    if args.resume:
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start, elapsed = state["epoch"], state["train_seconds"]
    elif (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()
    k = OBJECTIVES[args.objective]
    for epoch in range(start + 1, args.epochs + 1):
        began, total, seen = time.perf_counter(), 0.0, 0
        for batch in data.train:
            x = batch.images.flatten(1)
            loss = model.loss(x, iwae_samples=k, generator=generator).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(x), seen + len(x)
        elapsed += time.perf_counter() - began
        test_elbo, _ = test_scores(model, test, num_samples=0, seed=1)
        record = {"epoch": epoch, "train_loss": total / seen, "test_elbo_loss": test_elbo,
                  "train_seconds": elapsed}  # fmt: skip
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                 "epoch": epoch, "train_seconds": elapsed}  # fmt: skip
        torch.save(state, checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)

    began = time.perf_counter()
    test_elbo, test_nll = test_scores(model, test, num_samples=args.eval_samples, seed=2)
    result: dict[str, object] = {
        "objective": args.objective,
        "train_importance_samples": k,
        "epochs": args.epochs,
        "train_seconds": round(elapsed, 1),
        "test_elbo_loss": round(test_elbo, 3),
        f"test_nll_is{args.eval_samples}": round(test_nll, 3),
        "eval_seconds": round(time.perf_counter() - began, 1),
        "active_units": active_units(model, test),
        "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "command": "python scripts/results_literature.py "
        f"{args.objective} --epochs {args.epochs} --out {args.out}",
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)
    return result


@torch.no_grad()
def active_units(model: VAE, test: torch.Tensor, threshold: float = 1e-2) -> int:
    """Burda et al.'s active units: latents whose posterior mean varies (Cov_x > 0.01)."""
    model.eval()
    means = torch.cat([model.encode(x)[0] for x, _ in TensorBatches(test, batch_size=500)])
    return int((means.var(dim=0) > threshold).sum())


if __name__ == "__main__":
    main()
