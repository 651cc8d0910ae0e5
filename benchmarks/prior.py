"""`TransformerPrior` sampling with and without its key/value cache; training steps of both priors.

Sampling: 64 grids of 7x7 and of 8x8 codes (K = 512) from the default transformer
(4 blocks, 4 heads, width 128). With the cache each step runs the network on one new
position; without it (``use_cache=False``) each step runs the whole prefix again, as a
transformer without a cache must: $T$ positions against $T(T+1)/2$. Both draw the same
codes from the same generator (checked before timing). The two are timed interleaved;
the ratio is of medians.

Parallel sampling: 1,000 grids of 7x7 codes (K = 512) from `MaskGITPrior` at 4, 8 and
12 steps against the cached `TransformerPrior` of the same width and depth (the
defaults: 4 blocks, 4 heads, width 128), timed interleaved; the speed-up is of medians.
A MaskGIT step runs the network on all $T = 49$ positions, so at $S$ steps it computes
about $S$ times the blocks' arithmetic of the cached transformer, which runs $T$
sequential steps of one position each: it is faster where the $T$ small sequential steps
cost more than the $S T$ positions' arithmetic.

Training: one Adam step (forward, backward, update) of each prior at its defaults on a
batch of 128 grids of 7x7 codes, K = 512, timed interleaved.

Run: ``python -m benchmarks.prior`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from benchmarks._common import apply_threads, interleave, parser, print_table, span, write_json
from genlatent.priors import MaskGITPrior, PixelCNNPrior, TransformerPrior

CODEBOOK_SIZE = 512
NUM_SAMPLES = 64
GRIDS = [(7, 7), (8, 8)]
TRAIN_BATCH, TRAIN_GRID = 128, (7, 7)
PARALLEL_SAMPLES, PARALLEL_GRID, PARALLEL_STEPS = 1000, (7, 7), (4, 8, 12)
QUICK = {"codebook_size": 16, "num_samples": 4, "grids": [(2, 3)], "batch": 8}


def _transformer(codebook_size: int, grid: tuple[int, int], quick: bool) -> TransformerPrior:
    torch.manual_seed(0)
    options = {"layers": 1, "heads": 2, "dim": 16} if quick else {}
    return TransformerPrior(codebook_size, grid, **options).eval()


def _pixelcnn(codebook_size: int, grid: tuple[int, int], quick: bool) -> PixelCNNPrior:
    torch.manual_seed(0)
    options = {"channels": 8, "layers": 2} if quick else {}
    return PixelCNNPrior(codebook_size, grid, **options)


def sampling(
    codebook_size: int, num_samples: int, grid: tuple[int, int], repeats: int, quick: bool
) -> dict[str, Any]:
    prior = _transformer(codebook_size, grid, quick)

    def draw(use_cache: bool) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            generator = torch.Generator().manual_seed(0)
            return prior.sample(num_samples, generator=generator, use_cache=use_cache)

        return run

    # the check is also the warm-up round
    if not torch.equal(draw(True)(), draw(False)()):
        raise RuntimeError("cached and uncached sampling drew different codes")
    contenders = {"cached": draw(True), "uncached": draw(False)}
    timings = interleave(contenders, repeats=repeats, warmup=0)
    return {
        "grid": list(grid),
        "num_samples": num_samples,
        "codebook_size": codebook_size,
        "cached": timings["cached"].as_dict(),
        "uncached": timings["uncached"].as_dict(),
        "speedup_of_cache": timings["uncached"].median / timings["cached"].median,
        "_timings": timings,
    }


def parallel(codebook_size: int, num_samples: int, repeats: int, quick: bool) -> dict[str, Any]:
    """MaskGIT at each step count against the cached transformer, interleaved."""
    grid = (2, 3) if quick else PARALLEL_GRID
    steps = (2, 3) if quick else PARALLEL_STEPS
    transformer = _transformer(codebook_size, grid, quick)
    torch.manual_seed(0)
    options = {"layers": 1, "heads": 2, "dim": 16} if quick else {}
    maskgit = MaskGITPrior(codebook_size, grid, **options).eval()

    def run(sample: Callable[..., torch.Tensor], **kwargs: Any) -> Callable[[], torch.Tensor]:
        return lambda: sample(num_samples, generator=torch.Generator().manual_seed(0), **kwargs)

    contenders = {"TransformerPrior (cached)": run(transformer.sample)}
    contenders |= {f"MaskGITPrior, {n} steps": run(maskgit.sample, steps=n) for n in steps}
    timings = interleave(contenders, repeats=repeats, warmup=1)
    reference = timings["TransformerPrior (cached)"].median
    return {
        "grid": list(grid),
        "num_samples": num_samples,
        "codebook_size": codebook_size,
        **{name: timing.as_dict() for name, timing in timings.items()},
        "speedup_over_cached_transformer": {
            str(n): reference / timings[f"MaskGITPrior, {n} steps"].median for n in steps
        },
        "_timings": timings,
    }


def training(codebook_size: int, batch: int, repeats: int, quick: bool) -> dict[str, Any]:
    grid = (2, 3) if quick else TRAIN_GRID
    generator = torch.Generator().manual_seed(0)
    indices = torch.randint(codebook_size, (batch, *grid), generator=generator)
    steps = {}
    for name, prior in (
        ("TransformerPrior", _transformer(codebook_size, grid, quick).train()),
        ("PixelCNNPrior", _pixelcnn(codebook_size, grid, quick).train()),
    ):
        optimizer = torch.optim.Adam(prior.parameters(), lr=1e-4)

        def step(prior: torch.nn.Module = prior, optimizer: Any = optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)
            prior.loss(indices).loss.backward()
            optimizer.step()

        steps[name] = step
    timings = interleave(steps, repeats=repeats, warmup=2)
    return {
        "grid": list(grid),
        "batch_size": batch,
        "codebook_size": codebook_size,
        **{name: timing.as_dict() for name, timing in timings.items()},
        "_timings": timings,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--no-training", action="store_true", help="time sampling only")
    p.add_argument("--no-parallel", action="store_true", help="leave out MaskGIT sampling")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    quick = args.quick
    codebook_size = QUICK["codebook_size"] if quick else CODEBOOK_SIZE
    num_samples = QUICK["num_samples"] if quick else NUM_SAMPLES
    grids = QUICK["grids"] if quick else GRIDS
    repeats = args.repeats or 3  # an uncached 8x8 draw takes seconds

    cases = [sampling(codebook_size, num_samples, grid, repeats, quick) for grid in grids]
    print_table(
        ["grid", "grids drawn", "cached s (range)", "uncached s (range)", "cache speed-up"],
        [
            [
                "x".join(map(str, case["grid"])),
                str(num_samples),
                span(case["_timings"]["cached"]),
                span(case["_timings"]["uncached"]),
                f"{case['speedup_of_cache']:.1f}x",
            ]
            for case in cases
        ],
    )
    payload: dict[str, Any] = {
        "what": "TransformerPrior.sample with and without the key/value cache",
        "model": "defaults: layers=4, heads=4, dim=128" if not quick else "tiny (quick)",
        "sampling": [{k: v for k, v in case.items() if k != "_timings"} for case in cases],
    }
    if not args.no_parallel:
        count = QUICK["num_samples"] if quick else PARALLEL_SAMPLES
        case = parallel(codebook_size, count, repeats, quick)
        print()
        reference = case["_timings"]["TransformerPrior (cached)"].median
        print_table(
            ["sampler (same width and depth)", "grids drawn", "s median (range)", "speed-up"],
            [
                [name, f"{count} x {'x'.join(map(str, case['grid']))}", span(timing),
                 f"{reference / timing.median:.2f}x"]
                for name, timing in case["_timings"].items()
            ],
        )  # fmt: skip
        payload["parallel_sampling"] = {k: v for k, v in case.items() if k != "_timings"}
    if not args.no_training:
        batch = QUICK["batch"] if quick else TRAIN_BATCH
        train = training(codebook_size, batch, repeats, quick)
        print()
        print_table(
            ["prior (defaults)", "batch x grid", "ms/step median (range)"],
            [
                [name, f"{batch} x {'x'.join(map(str, train['grid']))}", span(timing, 1e3)]
                for name, timing in train["_timings"].items()
            ],
        )
        payload["training_step"] = {k: v for k, v in train.items() if k != "_timings"}
    path = write_json("prior", payload, args.out, quick=quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
