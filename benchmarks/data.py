"""Reading a folder of JPEGs: genlatent's `ImageFolder` against torchvision's, and the peak
memory of a training run on 1x and 10x the images.

Throughput: the benchmark writes ``--images`` (2,000) random smooth 160x120 JPEGs into a
temporary folder and reads all of them, each resized (shorter side, bilinear) and
centre-cropped to 128x128, with 0, 2 and 4 ``DataLoader`` workers at batch 64:

- ``genlatent``: `ImageFolder` read through the ``DataLoader`` of `StreamBatches`, the
  loader `fit` streams with (shuffled per epoch), uint8 batches;
- ``genlatent float``: the same, as `fit` receives the batches: scaled to float32 in
  $[0, 1]$ in the training process (on a GPU that happens on the device);
- ``torchvision`` (when installed): ``torchvision.datasets.ImageFolder`` with
  ``Compose([Resize(128), CenterCrop(128), PILToTensor()])`` (uint8 tensors) and a
  ``DataLoader(batch_size=64, shuffle=True, num_workers=...)``.

At each worker count the two are timed interleaved (A B B A ...); one sample is one pass
over the folder; images per second are reported as median (slowest-fastest).

Peak memory: ``genlatent train vqvae --dataset folder --image-size 128`` (a small VQ-VAE,
``--max-steps 20`` where the trainer has it, else one epoch of 20 batches) on folders of
1,000 and 10,000 128x128 JPEGs, each run in a fresh process whose peak resident memory
(``VmHWM``, the process's own high-water mark) is reported.

torchvision is not a dependency of genlatent: install it beside a torch it supports to
get its rows, e.g. ``pip install torchvision`` in a separate environment and
``pip install --no-deps -e .`` there. Without it the table has genlatent's rows only.

Run: ``python -m benchmarks.data`` (``--quick`` for a smoke test; ``--no-memory`` to
leave the training runs out).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from benchmarks._common import apply_threads, interleave, parser, print_table, write_json
from genlatent.data import ImageFolder, StreamBatches

SIZE, BATCH, SOURCE = 128, 64, (160, 120)
WORKERS = (0, 2, 4)


def write_jpegs(root: Path, count: int, size: tuple[int, int], *, seed: int = 0) -> None:
    """``count`` JPEGs of ``size`` (width, height) under ``root/images``: smooth colour
    gradients plus noise, quality 90 (files of a photograph's kind of entropy)."""
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    for i in range(count):
        a, b, c = rng.uniform(0.01, 0.1, 3)
        base = np.stack([np.sin(a * xs + i), np.cos(b * ys), np.sin(c * (xs + ys))], axis=-1)
        pixels = (base + 1) * 100 + rng.normal(0, 12, (height, width, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"{i:05d}.jpg", quality=90)


def _genlatent_passes(root: Path, workers: int) -> dict[str, Callable[[], int]]:
    """``genlatent``: the uint8 batches of the ``DataLoader`` `StreamBatches` builds (what
    torchvision's loader returns too); ``genlatent float``: `StreamBatches`' own batches,
    as `fit` receives them (scaled to float32 in this process)."""
    data = ImageFolder(root, size=SIZE)
    batches = StreamBatches(data, batch_size=BATCH, shuffle=True, seed=0, workers=workers)

    def uint8() -> int:
        return sum(images.shape[0] for images, _ in batches._loader())

    def scaled() -> int:
        return sum(batch.images.shape[0] for batch in batches)

    return {"genlatent": uint8, "genlatent float": scaled}


def _torchvision_pass(root: Path, workers: int) -> Callable[[], int] | None:
    try:
        from torchvision import datasets, transforms
    except ImportError:
        return None
    transform = transforms.Compose(
        [transforms.Resize(SIZE), transforms.CenterCrop(SIZE), transforms.PILToTensor()]
    )
    data = datasets.ImageFolder(str(root), transform=transform)
    loader = DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=workers)

    def run() -> int:
        return sum(images.shape[0] for images, _ in loader)

    return run


def throughput(
    root: Path, count: int, repeats: int, worker_counts: list[int]
) -> tuple[list[list[object]], dict[str, Any]]:
    """Images per second of each contender at each worker count."""
    rows: list[list[object]] = []
    results: dict[str, Any] = {}
    for workers in worker_counts:
        contenders = _genlatent_passes(root, workers)
        theirs = _torchvision_pass(root, workers)
        if theirs is not None:
            contenders["torchvision"] = theirs
        assert all(run() == count for run in contenders.values())  # every image, once
        timings = interleave(contenders, repeats=repeats, warmup=0)
        reference = timings.get("torchvision")
        for name, timing in timings.items():
            rate = count / timing.median
            versus = None if reference is None else reference.median / timing.median
            results[f"{name.replace(' ', '_')}_workers{workers}"] = {
                "workers": workers, **timing.as_dict(), "images_per_s": rate,
                "vs_torchvision": versus,
            }  # fmt: skip
            spread = f"{count / timing.high:,.0f}-{count / timing.low:,.0f}"
            shown = "-" if versus is None else f"{versus:.2f}"
            rows.append([name, workers, f"{rate:,.0f} ({spread})", shown])
    return rows, results


def _has_max_steps() -> bool:
    from genlatent.train.config import TrainerSettings

    return "max_steps" in {field.name for field in TrainerSettings.__dataclass_fields__.values()}


def train_argv(data_dir: Path, out: Path) -> list[str]:
    """The measured command: a small VQ-VAE, 20 steps of 16 images, 100 test images."""
    length = (
        ["--max-steps", "20"] if _has_max_steps() else ["--epochs", "1", "--train-limit", "320"]
    )
    return [
        "train", "vqvae", "--dataset", "folder", "--data-dir", str(data_dir), "--image-size",
        str(SIZE), "--batch-size", "16", "--hidden-channels", "16", "--codebook-size", "64",
        "--embedding-dim", "8", "--test-limit", "100", *length, "--no-progress",
        "--device", "cpu", "--out", str(out),
    ]  # fmt: skip


def peak_memory_case(count: int, folder: Path) -> None:
    """In this (fresh) process: train on ``count`` images, print the peak RSS as JSON."""
    from genlatent.cli import main as cli

    if not (folder / "images").is_dir():
        write_jpegs(folder, count, (SIZE, SIZE), seed=1)
    with tempfile.TemporaryDirectory() as run:
        status = cli(train_argv(folder / "images", Path(run) / "run"))
    if status != 0:
        raise SystemExit(f"the training run on {count} images failed ({status})")
    peak_kib = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(json.dumps({"images": count, "peak_bytes": peak_kib * 1024}))


def peak_memory(counts: tuple[int, ...], threads: int) -> dict[int, int]:
    """The peak of each run, one fresh process at a time (the folders written first)."""
    peaks = {}
    with tempfile.TemporaryDirectory() as root:
        for count in counts:
            folder = Path(root) / str(count)
            write_jpegs(folder, count, (SIZE, SIZE), seed=1)
            command = [
                sys.executable, "-m", "benchmarks.data", "--threads", str(threads),
                "--memory-case", str(count), str(folder),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            peaks[count] = int(json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"])
    return peaks


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2000, help="JPEGs in the throughput folder")
    p.add_argument("--no-memory", action="store_true", help="leave the training runs out")
    p.add_argument(
        "--workers", type=int, nargs="+", default=list(WORKERS), help="worker counts to time"
    )
    p.add_argument("--memory-case", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.memory_case is not None:
        peak_memory_case(int(args.memory_case[0]), Path(args.memory_case[1]))
        return {}
    count = 128 if args.quick else args.images
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as root:
        write_jpegs(Path(root), count, SOURCE)
        rows, results = throughput(Path(root), count, repeats, args.workers)
    print(f"{count} JPEGs of {SOURCE[0]}x{SOURCE[1]} to {SIZE}x{SIZE}, batch {BATCH}")
    print_table(["reader", "workers", "images/s (slowest-fastest)", "vs torchvision"], rows)
    payload: dict[str, Any] = {
        "images": count, "source_size": list(SOURCE), "size": SIZE, "batch_size": BATCH,
        "results": results,
    }  # fmt: skip
    if not args.no_memory:
        counts = (100, 1000) if args.quick else (1000, 10000)
        peaks = peak_memory(counts, torch.get_num_threads())
        growth = peaks[counts[1]] - peaks[counts[0]]
        print_table(["images", "peak RSS (MB)"], [[n, f"{peaks[n] / 1e6:,.0f}"] for n in counts])
        print(f"growth from {counts[0]:,} to {counts[1]:,} images: {growth / 1e6:,.1f} MB")
        payload["memory"] = {
            "command": ["genlatent", *train_argv(Path("DIR"), Path("RUN"))],
            "peak_bytes": {str(n): peaks[n] for n in counts}, "growth_bytes": growth,
        }  # fmt: skip
    path = write_json("data", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
