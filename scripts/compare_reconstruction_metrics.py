"""How genlatent's PSNR and SSIM relate to torchmetrics' and scikit-image's.

The measurement quoted in docs/concepts/tokenizer.md.

Scores the first N MNIST test images against three kinds of distortion (Gaussian noise,
a blur, and a VQ-VAE's reconstructions when a run directory is given) with
`genlatent.metrics.psnr`/`ssim`, torchmetrics' functional ``peak_signal_noise_ratio`` and
``structural_similarity_index_measure`` (Gaussian window 11, sigma 1.5, per image), and
scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` with the
settings of Wang et al.'s reference code (``gaussian_weights=True``, ``sigma=1.5``,
``use_sample_covariance=False``), and prints the largest and mean absolute difference of
each per-image value. Neither package is a dependency of genlatent; run it where both are
installed (torchvision's environment has room for them)::

    PYTHONPATH=src python scripts/compare_reconstruction_metrics.py DATA/mnist [RUN_DIR]

The JSON goes to ``docs/data/metrics/agreement.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

import genlatent
from genlatent.data import load_mnist
from genlatent.metrics import psnr, ssim

OUT = Path(__file__).resolve().parents[1] / "docs" / "data" / "metrics"


def _distortions(x: torch.Tensor, run_dir: str | None) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    kernel = torch.ones(1, 1, 3, 3) / 9
    blurred = torch.nn.functional.conv2d(x, kernel, padding=1)
    found = {"gaussian noise, sigma 0.1": noisy, "3x3 box blur": blurred}
    if run_dir is not None:
        from genlatent.train.runs import load_run

        model = load_run(run_dir, device="cpu").model.eval()
        with torch.no_grad():
            found[f"reconstructions of {Path(run_dir).name}"] = model.reconstruct(x).clamp(0, 1)
    return found


def _differences(ours: torch.Tensor, theirs: torch.Tensor) -> dict[str, float]:
    gap = (ours.double() - theirs.double()).abs()
    return {
        "max_abs": float(gap.max()),
        "mean_abs": float(gap.mean()),
        "mean_ours": float(ours.mean()),
        "mean_theirs": float(theirs.mean()),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("run_dir", nargs="?")
    p.add_argument("--images", type=int, default=1000)
    args = p.parse_args(argv)
    import numpy as np
    import skimage
    import torchmetrics
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio as tm_psnr,
    )
    from torchmetrics.functional.image import (
        structural_similarity_index_measure as tm_ssim,
    )

    x = load_mnist(args.data, split="test").images[: args.images].float() / 255
    rows: dict[str, object] = {}
    for name, y in _distortions(x, args.run_dir).items():
        ours_psnr, ours_ssim = psnr(y, x), ssim(y, x)
        metrics_psnr = torch.stack(
            [tm_psnr(a[None], b[None], data_range=1.0) for a, b in zip(y, x, strict=True)]
        )
        metrics_ssim = tm_ssim(y, x, data_range=1.0, reduction="none")
        xs, ys = x[:, 0].double().numpy(), y[:, 0].double().numpy()
        pairs = list(zip(xs, ys, strict=True))
        sk_psnr = torch.tensor([peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in pairs])
        reference = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
        sk_ssim = torch.tensor(
            np.array([structural_similarity(a, b, data_range=1.0, **reference) for a, b in pairs])
        )
        rows[name] = {
            "psnr_vs_torchmetrics": _differences(ours_psnr, metrics_psnr),
            "psnr_vs_skimage": _differences(ours_psnr, sk_psnr),
            "ssim_vs_torchmetrics": _differences(ours_ssim, metrics_ssim),
            "ssim_vs_skimage": _differences(ours_ssim, sk_ssim),
        }
        for key, value in rows[name].items():  # type: ignore[union-attr]
            gaps = f"max |diff| {value['max_abs']:.2e}  mean |diff| {value['mean_abs']:.2e}"
            print(f"{name:<40} {key:<22} {gaps}")
    payload = {
        "what": "per-image PSNR and SSIM of genlatent against torchmetrics and scikit-image",
        "images": args.images,
        "versions": {
            "genlatent": genlatent.__version__,
            "torch": torch.__version__,
            "torchmetrics": torchmetrics.__version__,
            "skimage": skimage.__version__,
            "python": platform.python_version(),
        },
        "rows": rows,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "agreement.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
