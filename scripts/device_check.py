"""The whole command-line path on one device, checked against the CPU where it must agree.

Trains a VAE and a VQ-VAE (EMA codebook, dead-code restarts, bf16 autocast) on the
bundled digits, resumes a run and compares it with an uninterrupted one, fits a prior,
samples, and evaluates: every step through ``genlatent`` commands, as users run them.
Then the checks that must hold on any device:

- resume: a run of 2 epochs equals 1 epoch resumed to 2 (bit for bit on the CPU; on
  another device to the named tolerance, as GPU kernels may sum in another order);
- the device's evaluation of the trained VQ-VAE (no sampling noise) equals the CPU's
  evaluation of the same weights, to float32 tolerance;
- every metric is finite, and samples and evaluation ran.

Usage::

    python scripts/device_check.py                 # the CPU (CI)
    python scripts/device_check.py --device cuda   # a GPU; --json FILE writes the report

Exits 1 if a check fails. Takes under a minute on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from genlatent.cli import main as genlatent
from genlatent.data import TensorBatches
from genlatent.metrics import evaluate_model
from genlatent.train.build import load_test_set
from genlatent.train.runs import load_run

VAE = ["train", "vae", "--dataset", "digits", "--latent-dim", "4", "--batch-size", "64"]
VQVAE = [
    "train", "vqvae", "--dataset", "digits", "--hidden-channels", "16", "--codebook-size",
    "16", "--embedding-dim", "4", "--ema", "--restart-dead-codes", "3", "--precision", "bf16",
    "--batch-size", "64", "--lr", "3e-3",
]  # fmt: skip
PRIOR = ["--epochs", "2", "--batch-size", "64", "--lr", "3e-3"]
RESUME_TOLERANCE = 1e-4
"""Largest weight difference allowed between resumed and uninterrupted runs off the CPU."""
EVAL_TOLERANCE = 1e-3
"""Relative difference allowed between the device's and the CPU's evaluation."""


def _run(argv: list[str]) -> str:
    """``genlatent ARGV``; its printed output. A non-zero exit stops the check."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = genlatent([*argv, *([] if argv[0] != "train" else ["--no-progress"])])
    if status != 0:
        raise SystemExit(f"genlatent {' '.join(argv)} exited with {status}:\n{out.getvalue()}")
    return out.getvalue()


def _largest_difference(first: Path, second: Path) -> float:
    a = torch.load(first / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    b = torch.load(second / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return max(
        float((a["model"][k].float() - b["model"][k].float()).abs().max())
        for k in a["model"]
        if a["model"][k].is_floating_point()
    )


def _evaluation(run: Path, device: str) -> float:
    loaded = load_run(run, device=device)
    test = TensorBatches(load_test_set(loaded.config), batch_size=500, device=device)
    return evaluate_model(loaded.model, test).terms["loss"]


def check(device: str, folder: Path) -> dict[str, Any]:
    """Run every step on ``device`` in ``folder``; the report, with ``passed``."""
    on = ["--device", device]
    report: dict[str, Any] = {"device": device, "torch": torch.__version__, "checks": {}}
    if device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(torch.device(device))
    started = time.perf_counter()
    _run([*VAE, "--epochs", "2", *on, "--out", str(folder / "vae")])
    _run([*VQVAE, "--epochs", "2", *on, "--out", str(folder / "vq")])
    _run([*VQVAE, "--epochs", "1", *on, "--out", str(folder / "vq-parts")])
    _run(["train", "--resume", str(folder / "vq-parts"), "--epochs", "2"])
    _run(["train", "prior", str(folder / "vq"), *PRIOR])
    _run(["sample", str(folder / "vae"), "-n", "16", "--out", str(folder / "vae.png")])
    _run(["sample", str(folder / "vq"), "-n", "16", "--out", str(folder / "vq.png")])
    metrics = {
        name: json.loads(_run(["eval", str(folder / name), "--json"])) for name in ("vae", "vq")
    }
    report["seconds"] = round(time.perf_counter() - started, 1)

    difference = _largest_difference(folder / "vq", folder / "vq-parts")
    exact = device == "cpu"
    report["checks"]["resume"] = {
        "largest_weight_difference": difference,
        "passed": difference == 0 if exact else difference <= RESUME_TOLERANCE,
    }
    here, cpu = _evaluation(folder / "vq", device), _evaluation(folder / "vq", "cpu")
    report["checks"]["evaluation_matches_cpu"] = {
        "device_loss": here,
        "cpu_loss": cpu,
        "passed": abs(here - cpu) <= EVAL_TOLERANCE * max(abs(cpu), 1e-12),
    }
    finite = all(
        math.isfinite(v) for m in metrics.values() for v in m.values() if isinstance(v, float)
    )
    report["checks"]["finite_metrics"] = {"passed": finite}
    report["checks"]["samples_written"] = {
        "passed": all((folder / f"{n}.png").is_file() for n in ("vae", "vq"))
    }
    report["metrics"] = metrics
    report["passed"] = all(c["passed"] for c in report["checks"].values())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="a torch device string (default cpu)")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        report = check(args.device, Path(folder))
    for name, result in report["checks"].items():
        details = ", ".join(f"{k} {v:.3g}" for k, v in result.items() if k != "passed")
        print(f"{'ok  ' if result['passed'] else 'FAIL'} {name:24} {details}")
    print(f"{report['device']}: {'passed' if report['passed'] else 'FAILED'} in "
          f"{report['seconds']} s")  # fmt: skip
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
