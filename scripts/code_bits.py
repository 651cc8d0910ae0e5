"""How the bits of a binary quantizer's codes co-vary on MNIST's test set (docs/results.md).

For a run whose quantizer is `LFQ` (or BSQ, ``spherical=True``), encodes the 10,000 test
images and reports, over all code positions: each bit's mean, the sum of the bits'
entropies (what BSQ's factorized codebook entropy sees), the entropy of the codes
themselves (what the exact one sees) and its perplexity, the codes used, and the
largest and mean absolute correlation between two bits. One JSON per run goes to
``docs/data/quantizers/bits/``::

    python scripts/code_bits.py DATA/mnist RUN_DIR [RUN_DIR...]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch

from genlatent.data import load_mnist
from genlatent.train.prior import encode_codes
from genlatent.train.runs import load_run

OUT = Path(__file__).resolve().parents[1] / "docs" / "data" / "quantizers" / "bits"


def _bits_of(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """(N, bits) float64 matrix of the codes' binary digits, least significant first."""
    return torch.stack([(codes >> b) & 1 for b in range(bits)], dim=1).double()


def _entropy_bits(probs: torch.Tensor) -> float:
    probs = probs[probs > 0]
    return float(-(probs * probs.log2()).sum())


def code_bits(data: str, run_dir: str) -> dict[str, object]:
    """The bit statistics of one run's test-set codes (module docstring)."""
    model = load_run(run_dir, device="cpu").model
    size = int(model.quantizer.codebook_size)
    bits = int(math.log2(size))
    codes = encode_codes(model, load_mnist(data, split="test").images).flatten()
    matrix = _bits_of(codes, bits)
    means = matrix.mean(dim=0)
    frequencies = torch.bincount(codes, minlength=size).double()
    frequencies /= frequencies.sum()
    joint = _entropy_bits(frequencies)
    correlation = torch.corrcoef(matrix.T) - torch.eye(bits, dtype=torch.float64)
    return {
        "run": Path(run_dir).name,
        "bits": bits,
        "bit_means": [float(m) for m in means],
        "sum_of_bit_entropies": sum(_entropy_bits(torch.stack([m, 1 - m])) for m in means),
        "code_entropy": joint,
        "perplexity": 2.0**joint,
        "codes_used": int((frequencies > 0).sum()),
        "max_abs_bit_correlation": float(correlation.abs().max()),
        "mean_abs_bit_correlation": float(correlation.abs().sum() / (bits * (bits - 1))),
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("runs", nargs="+")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    for run_dir in args.runs:
        record = code_bits(args.data, run_dir)
        path = OUT / f"{record['run']}.json"
        path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(
            f"{record['run']}: bits' entropies {record['sum_of_bit_entropies']:.2f} of "
            f"{record['bits']}, code entropy {record['code_entropy']:.2f} bits (perplexity "
            f"{record['perplexity']:.1f}), largest |correlation| "
            f"{record['max_abs_bit_correlation']:.2f}; wrote {path}"
        )


if __name__ == "__main__":
    main()
