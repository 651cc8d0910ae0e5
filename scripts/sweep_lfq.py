"""The sweep that chose LFQ's and BSQ's default weights (docs/results.md).

Each point is the reduced-width MNIST VQ-VAE of `results_quantizers.py` with a 512-code
`LFQ` (or BSQ, ``spherical=True``) of the given temperature, entropy weight and commitment
weight, trained by `fit` with the reference schedule (Adam 2e-4, batch 128, seed 0) and
scored on the 10,000 test images: code usage, perplexity and MSE. One JSON per point goes to
``docs/data/quantizers/sweep/``::

    python scripts/sweep_lfq.py DATA/mnist runs/sweep [--epochs 1] [--spherical] \\
        [--factorized-entropy] [--temperature 0.01 0.1 1] [--entropy-weight 0.1 1] \\
        [--commitment-weight 0.25]

BSQ's points take its default, the exact codebook entropy (labelled ``bsq-exact``), or
with ``--factorized-entropy`` the BSQ paper's sum of the bits' entropies (``bsq``, the
default when the first points were run).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from pathlib import Path

from results_quantizers import DIM, OUT, train_and_evaluate

from genlatent import LFQ

SWEEP = OUT / "sweep"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("runs", type=Path)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--spherical", action="store_true", help="BSQ instead of LFQ")
    p.add_argument("--factorized-entropy", action="store_true",
                   help="BSQ with the paper's factorized codebook entropy")  # fmt: skip
    p.add_argument("--temperature", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--entropy-weight", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--commitment-weight", type=float, nargs="+", default=[0.25])
    args = p.parse_args(argv)
    if args.factorized_entropy and not args.spherical:
        p.error("--factorized-entropy applies to BSQ (--spherical) only: LFQ's is exact")
    kind = ("bsq" if args.factorized_entropy else "bsq-exact") if args.spherical else "lfq"
    grid = itertools.product(args.temperature, args.entropy_weight, args.commitment_weight)
    for temperature, entropy, commitment in grid:
        label = f"{kind}-t{temperature:g}-h{entropy:g}-c{commitment:g}-e{args.epochs}"

        def quantizer(t: float = temperature, h: float = entropy, c: float = commitment) -> LFQ:
            return LFQ(512, dim=DIM, temperature=t, entropy_weight=h, commitment_weight=c,
                       spherical=args.spherical,
                       factorized_entropy=args.factorized_entropy)  # fmt: skip

        record = train_and_evaluate(quantizer, label, args.data, args.runs, args.epochs, SWEEP)
        print(
            f"{label}: codes used {record['fraction_used']:.1%}, perplexity "
            f"{record['perplexity']:.1f}, mse {record['mse']:.5f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
