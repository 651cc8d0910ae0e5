"""The quantizer family on the reduced-width MNIST VQ-VAE at equal steps (docs/results.md).

Each variant is the reduced-width VQ-VAE of the results page (64 hidden channels, a 7x7
grid) with another quantizer, trained by `fit` with the reference schedule (Adam 2e-4,
batch 128) for 3 epochs, then evaluated on the 10,000 test images with `evaluate_model`.
One JSON per variant goes to ``docs/data/quantizers/``::

    python scripts/results_quantizers.py ../shared/data/mnist runs/results [NAME ...]

``EPOCHS=6`` (an environment variable) trains that many epochs instead and writes
``NAME-e6.json``: the longer run of the FSQ code-usage claim.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from genlatent import (
    FSQ,
    LFQ,
    VQVAE,
    ConvDecoder,
    ConvEncoder,
    GroupedQuantizer,
    ResidualQuantizer,
    ResidualVQ,
    SimVQ,
    VectorQuantizer,
    fit,
)
from genlatent.data import TensorBatches, load_mnist
from genlatent.metrics import evaluate_model

OUT = Path("docs/data/quantizers")
DIM = 16  # the encoder's output channels, as the reference VQ-VAE
VQ = {"ema": True, "restart_dead_codes": 100}

VARIANTS: dict[str, Callable[[], nn.Module]] = {
    "vq-ema-restart": lambda: VectorQuantizer(512, DIM, **VQ),
    "vq-rotation": lambda: VectorQuantizer(512, DIM, gradient="rotation", **VQ),
    "vq-cosine": lambda: VectorQuantizer(512, DIM, distance="cosine", **VQ),
    "vq-kmeans": lambda: VectorQuantizer(512, DIM, init="kmeans", **VQ),
    "fsq-512": lambda: FSQ([8, 8, 8], dim=DIM),
    "fsq-1000": lambda: FSQ([8, 5, 5, 5], dim=DIM),
    "lfq-512": lambda: LFQ(512, dim=DIM, temperature=0.01),  # the default until the sweep
    "rvq-2x512": lambda: ResidualVQ(2, 512, DIM, **VQ),
    "rvq-4x512": lambda: ResidualVQ(4, 512, DIM, **VQ),
    "rfsq-4x1000": lambda: ResidualQuantizer([FSQ([8, 5, 5, 5], dim=DIM) for _ in range(4)]),
    "rlfq-4x512": lambda: ResidualQuantizer(
        [LFQ(512, dim=DIM, temperature=0.01) for _ in range(4)]  # run before the new default
    ),
    "grouped-lfq-2x512": lambda: GroupedQuantizer([LFQ(512, dim=DIM // 2) for _ in range(2)]),
    "simvq-512": lambda: SimVQ(512, DIM),
    # made with the BSQ paper's factorized entropy, the default before the sweep
    "bsq-512": lambda: LFQ(512, dim=DIM, spherical=True, factorized_entropy=True),
}


def run(name: str, data: str, runs: Path, epochs: int = 3) -> dict[str, object]:
    """Train and evaluate the variant ``name``; its JSON goes to ``OUT``."""
    label = name if epochs == 3 else f"{name}-e{epochs}"
    return train_and_evaluate(VARIANTS[name], label, data, runs, epochs, OUT)


def train_and_evaluate(
    quantizer: Callable[[], nn.Module], label: str, data: str, runs: Path, epochs: int, out: Path
) -> dict[str, object]:
    """The reduced VQ-VAE with ``quantizer()``, trained by `fit`; ``out/label.json`` its record."""
    train, test = load_mnist(data, split="train"), load_mnist(data, split="test")
    torch.manual_seed(0)
    model = VQVAE(ConvEncoder(1, 64, DIM), quantizer(), ConvDecoder(DIM, 64, 1))
    start = time.perf_counter()
    summary = fit(
        model, train, test, run_dir=runs / f"quantizer-{label}", epochs=epochs,
        batch_size=128, lr=2e-4, overwrite=True, show_progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    steps = epochs * -(-len(train) // 128)
    result = evaluate_model(model, TensorBatches(test, batch_size=500))
    record = {
        "variant": label,
        "train_codes_used_by_epoch": [
            json.loads(line)["train_codes_used"]
            for line in (runs / f"quantizer-{label}" / "metrics.jsonl").read_text().splitlines()
        ],
        "codebook_size": model.quantizer.codebook_size,
        "steps": steps,
        "train_seconds": seconds,
        "seconds_per_step": seconds / steps,
        "last_epoch_seconds": summary.last_metrics["epoch_seconds"],
        **result.as_dict(),
    }
    if result.counts is not None and result.counts.dim() == 2:  # stages or groups: one row each
        record["fraction_used_by_stage"] = [
            float((row > 0).float().mean()) for row in result.counts
        ]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{label}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def main(argv: list[str]) -> None:
    data, runs, *names = argv
    epochs = int(os.environ.get("EPOCHS", "3"))
    for name in names or list(VARIANTS):
        record = run(name, data, Path(runs), epochs)
        print(
            f"{name}: mse {record['mse']:.5f}, psnr {record['psnr']:.2f} dB, codes used "
            f"{record['fraction_used']:.1%}, perplexity {record['perplexity']:.1f}, "
            f"{record['seconds_per_step'] * 1e3:.0f} ms/step",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
