"""MNIST VAE training throughput: genlatent's reference trainer vs the tutorial's plain loop.

Both train the same 784-400-400-200 MLP VAE (LeakyReLU(0.2), Bernoulli decoder; 1,189,984
parameters) on the same real MNIST images, batch 100, with the same number of threads:

- ``genlatent``: the reference trainer's epoch (`genlatent.train.loop.train_epoch` over
  `VAE.loss`, called through `LossModule` as `fit` calls it), batches from
  `TensorBatches` and Adam built as the trainer builds it (fused on CPU);
- ``tutorial``: the loop as the tutorial writes it, in this file: a ``DataLoader`` over a
  ``TensorDataset`` (already float, so it is spared the tutorial's per-image ``ToTensor``),
  sigmoid output with ``F.binary_cross_entropy(reduction="sum")`` plus the KL, default
  Adam (lr 1e-3), and ``loss.item()`` every step;
- ``pythae`` (when installed): pythae's ``BaseTrainer`` on a pythae ``VAE`` with the same
  encoder and decoder sizes.

One sample is one pass over the subset. A ``2048 x 2048`` float32 matmul is timed in the
same rounds, giving the peak the trainers are measured against. Model FLOPs per image:
forward ``2 W``, weight gradients ``2 W`` and input gradients ``2 (W - W_1)`` (the first
layer's input needs none), with ``W`` = 1,187,200 weights and ``W_1`` = 313,600 in the first
layer: 6,496,000 FLOP; biases, activations and the loss are left out (a slight undercount).

Run: ``python -m benchmarks.vae_trainer`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks._common import (
    apply_threads,
    gflops,
    interleave,
    parser,
    print_table,
    rate_span,
    write_json,
)
from benchmarks._tutorial_vae import tutorial_decoder, tutorial_hidden
from genlatent.data import ImageDataset, TensorBatches, load_mnist
from genlatent.models import mnist_vae
from genlatent.train.loop import LossModule, StepSettings, train_epoch
from genlatent.train.optimizers import adam

MNIST_DIR = Path(os.environ.get("GENLATENT_MNIST", "/work/shared/data/mnist"))
BATCH_SIZE = 100
LAYERS = [(784, 400), (400, 400), (400, 200), (400, 200), (200, 400), (400, 400), (400, 784)]
WEIGHTS = sum(i * o for i, o in LAYERS)
FLOPS_PER_IMAGE = 2 * WEIGHTS + 2 * WEIGHTS + 2 * (WEIGHTS - 784 * 400)
MATMUL_SIZE = 2048


class TutorialEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = tutorial_hidden()
        self.mean = nn.Linear(400, 200)
        self.log_var = nn.Linear(400, 200)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x)
        return self.mean(h), self.log_var(h)


class TutorialVAE(nn.Module):
    """The tutorial's model: sigmoid probabilities out, reparameterized in ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = TutorialEncoder()
        self.decoder = tutorial_decoder()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.encoder(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        return self.decoder(z), mean, log_var


def tutorial_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader) -> float:
    """One epoch of the tutorial's loop, as written there (a ``.item()`` every step)."""
    model.train()
    overall_loss = 0.0
    for x, _ in loader:
        x = x.view(x.shape[0], 784)
        optimizer.zero_grad()
        x_hat, mean, log_var = model(x)
        reproduction = F.binary_cross_entropy(x_hat, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
        loss = reproduction + kld
        overall_loss += loss.item()
        loss.backward()
        optimizer.step()
    return overall_loss


def _pythae_epoch(images: torch.Tensor) -> Any:
    """A callable running one epoch of pythae's trainer, or ``None`` without pythae."""
    try:
        from benchmarks._pythae import pythae_epoch
    except ImportError:
        print("pythae is not installed: that peer is absent (pip install 'genlatent[bench]')")
        return None
    return pythae_epoch(images, batch_size=BATCH_SIZE)


def load_images(num_images: int) -> ImageDataset:
    train = load_mnist(MNIST_DIR, split="train")
    return ImageDataset(
        train.images[:num_images].clone(), train.labels[:num_images].clone(), name="mnist-subset"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=None, help="training images per sample")
    p.add_argument("--no-pythae", action="store_true", help="leave pythae out even if installed")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    num_images = args.images or (400 if args.quick else 10_000)
    repeats = args.repeats or (2 if args.quick else 9)
    dataset = load_images(num_images)
    device = torch.device("cpu")

    torch.manual_seed(0)
    ours = mnist_vae()
    ours_opt = adam(ours.parameters(), 1e-3, device)
    ours_module, settings = LossModule(ours), StepSettings(device)
    batches = TensorBatches(
        dataset, batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(0)
    )

    tutorial = TutorialVAE()
    tutorial_opt = torch.optim.Adam(tutorial.parameters(), lr=1e-3)
    floats = dataset.images.float().div(255)
    loader = DataLoader(TensorDataset(floats, dataset.labels), batch_size=BATCH_SIZE, shuffle=True)
    if sum(p.numel() for p in tutorial.parameters()) != sum(p.numel() for p in ours.parameters()):
        raise RuntimeError("the tutorial's model and genlatent's differ in size")

    size = 256 if args.quick else MATMUL_SIZE
    a, b = torch.randn(size, size), torch.randn(size, size)
    contenders: dict[str, Any] = {
        "genlatent": lambda: train_epoch(
            ours_module, ours_opt, batches, settings, epoch=1, show_progress=False
        ),
        "tutorial": lambda: tutorial_epoch(tutorial, tutorial_opt, loader),
        "matmul": lambda: torch.mm(a, b),
    }
    pythae_version = None
    if not args.no_pythae:
        pythae_run = _pythae_epoch(floats)
        if pythae_run is not None:
            contenders["pythae"] = pythae_run
            from importlib import metadata

            pythae_version = metadata.version("pythae")
    timings = interleave(contenders, repeats=repeats, warmup=1)

    matmul = timings.pop("matmul")
    peak = gflops(2 * size**3, matmul.median)
    base = timings["tutorial"].median
    rows = [["matmul peak (GFLOP/s)", f"{peak:,.0f}", "", ""]]
    results: dict[str, Any] = {}
    for name, timing in timings.items():
        achieved = gflops(FLOPS_PER_IMAGE * num_images, timing.median)
        results[name] = {
            **timing.as_dict(),
            "images_per_s": num_images / timing.median,
            "speedup_vs_tutorial": base / timing.median,
            "gflops": achieved,
            "fraction_of_peak": achieved / peak,
        }
        rows.append(
            [
                name,
                rate_span(timing, num_images),
                f"{base / timing.median:.2f}x",
                f"{achieved / peak:.0%}",
            ]
        )
    print_table(["contender", "images/s median (range)", "vs tutorial", "of matmul peak"], rows)
    payload = {
        "what": "MNIST VAE training, batch 100: images per second over one pass of a subset",
        "images_per_sample": num_images,
        "batch_size": BATCH_SIZE,
        "flops_per_image": FLOPS_PER_IMAGE,
        "flops_formula": "2W forward + 2W weight grads + 2(W - W1) input grads, W=1,187,200",
        "matmul": {**matmul.as_dict(), "size": size, "gflops": peak},
        "peers": {"pythae": pythae_version},
        "results": results,
    }
    path = write_json("vae_trainer", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
