"""How a `VectorQuantizer` (EMA) training step scales with batch, codebook and grid size.

Three sweeps of one training step (forward, EMA update, backward to the inputs) of
``VectorQuantizer(K, 16, ema=True, chunk_size=4096)`` on channel-first inputs
``(B, 16, H, W)``, each sweep timed interleaved (all its points in turn, round after
round):

- batch size ``B`` at an 8x8 grid and 512 codes;
- codebook size ``K`` from 1 to 65,536 at ``B = 32``, 8x8 (2,048 rows); codebooks above
  4,096 codes are searched 4,096 codes at a time (``chunk_size``);
- latent grid ``H = W`` at ``B = 32`` and 512 codes.

Growth is judged by the log-log slope of time against size over the upper half of each
sweep (1 is linear; fixed per-call overheads make the lower half flatter). Peak memory is
the peak-RSS growth of one step, each point in a fresh subprocess (see
`benchmarks._common.rss_growth`): it grows with the rows, and only boundedly with ``K``
(the distance block is at most rows x 4,096 floats, and rows are searched in blocks).

Run: ``python -m benchmarks.scaling`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from benchmarks._common import (
    apply_threads,
    interleave,
    measure_in_subprocesses,
    parser,
    print_table,
    rss_growth,
    span,
    write_json,
)
from genlatent import VectorQuantizer
from genlatent._validation import validate_args

DIM = 16
CHUNK = 4096
FULL = {
    "batch_size": [8, 16, 32, 64, 128, 256],
    "codebook_size": [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536],
    "grid": [2, 4, 8, 16, 32, 64],
}
QUICK = {"batch_size": [2, 4], "codebook_size": [1, 64, 8192], "grid": [2, 4]}


def _point(sweep: str, value: int) -> tuple[int, int, int]:
    """``(B, K, H)`` of a sweep's point; the others at their defaults (32, 512, 8)."""
    batch, codes, grid = 32, 512, 8
    if sweep == "batch_size":
        batch = value
    elif sweep == "codebook_size":
        codes = value
    else:
        grid = value
    return batch, codes, grid


def _step(batch: int, codes: int, grid: int) -> Any:
    quantizer = VectorQuantizer(codes, DIM, ema=True, chunk_size=CHUNK)
    x = torch.randn(batch, DIM, grid, grid, generator=torch.Generator().manual_seed(0)) * 0.1
    x.requires_grad_()

    def step() -> None:
        x.grad = None
        with validate_args(False):  # as the trainer runs it
            out = quantizer(x)
        (out.loss + out.quantized.square().mean()).backward()

    return step


def _slope(sizes: list[float], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size) over the upper half of the points."""
    pairs = list(zip(sizes, seconds, strict=True))[len(sizes) // 2 :]
    if len(pairs) < 2:
        pairs = list(zip(sizes, seconds, strict=True))
    xs = [math.log(s) for s, _ in pairs]
    ys = [math.log(t) for _, t in pairs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--memory-case", nargs=3, metavar=("B", "K", "H"), help="(internal)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.memory_case:
        batch, codes, grid = (int(v) for v in args.memory_case)
        _step(1, codes, 2)()  # load kernels, start the autograd engine
        peak = rss_growth(_step(batch, codes, grid))
        print(json.dumps({"peak_bytes": peak}))
        return {"peak_bytes": peak}

    sweeps = QUICK if args.quick else FULL
    repeats = args.repeats or (2 if args.quick else 7)
    payload: dict[str, Any] = {
        "what": "VectorQuantizer(K, 16, ema=True, chunk_size=4096) training step",
        "embedding_dim": DIM,
        "chunk_size": CHUNK,
        "sweeps": {},
    }
    for sweep, values in sweeps.items():
        points = {value: _point(sweep, value) for value in values}
        timings = interleave({str(v): _step(*points[v]) for v in values}, repeats=repeats, warmup=1)
        memory: list[int | None] = (
            [None] * len(values)
            if args.no_memory
            else measure_in_subprocesses(
                "benchmarks.scaling", [[str(n) for n in points[v]] for v in values]
            )
        )
        sizes = [float(v if sweep != "grid" else v * v) for v in values]
        medians = [timings[str(v)].median for v in values]
        slope = _slope(sizes, medians)
        rows, entries = [], []
        for value, peak in zip(values, memory, strict=True):
            batch, codes, grid = points[value]
            timing = timings[str(value)]
            num_rows = batch * grid * grid
            entries.append(
                {
                    sweep: value,
                    "batch_size": batch,
                    "codebook_size": codes,
                    "grid": [grid, grid],
                    "rows": num_rows,
                    **timing.as_dict(),
                    "ns_per_row": timing.median / num_rows * 1e9,
                    "peak_memory_bytes": peak,
                }
            )
            rows.append(
                [
                    f"B={batch} K={codes} {grid}x{grid}",
                    num_rows,
                    span(timing, 1e3),
                    f"{timing.median / num_rows * 1e9:,.0f}",
                    "-" if peak is None else f"{peak / 2**20:,.1f}",
                ]
            )
        print(f"\n{sweep} (log-log slope over the upper half: {slope:.2f})")
        print_table(["point", "rows", "ms/step median (range)", "ns/row", "peak MiB"], rows)
        payload["sweeps"][sweep] = {"slope": slope, "points": entries}
    path = write_json("scaling", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
