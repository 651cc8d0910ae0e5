r"""``genlatent eval --iwae-k K``'s importance-weighted bound against its decoder-bound limit.

The path the command line runs (`evaluate_run` on a run directory: the test metrics, the
active units, then the IWAE bound of every test image with ``K`` samples, in inference
mode), timed on Burda et al.'s one-stochastic-layer model (784-200-200-50, tanh,
Bernoulli; the weights of a one-step `fit` run), on the first ``--images`` MNIST test
images (grey levels, random ones where the data is not found: the time depends on neither
the weights nor the pixel values), against:

- the same bound under ``torch.no_grad()`` (how ``evaluate_run`` ran it before, with
  autograd's version counters and views on every decoder row);
- **the decoder alone** on the same $K N$ latents, 16,400 rows a call: the work no
  evaluation of the bound can skip, its limit;
- the decoder and **one softplus pass** over its $K N \times 784$ logits: the Bernoulli
  likelihood's $\log p(x \mid z) = x^\top l - \sum_d \operatorname{softplus}(l_d)$ cannot
  skip the softplus of every logit (the $x^\top l$ part is a matrix product), so this is the
  bound's own floor; with the small 784-200-200-50 decoder the softplus pass is a large
  share of it.

All contenders run interleaved in one process (`benchmarks._common.interleave`). The
seconds per million decoder rows give the whole test set's time: $K = 5000$ on 10,000
images is 50 million rows.

Run: ``python -m benchmarks.iwae_eval --threads 1`` (``--quick`` for a smoke test;
``--data-dir`` for MNIST elsewhere than ``../shared/data/mnist``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks._common import apply_threads, interleave, parser, print_table, write_json
from genlatent import fit
from genlatent.data import ImageDataset, TensorBatches, load_mnist
from genlatent.metrics import iwae_bound
from genlatent.models.presets import vae_preset
from genlatent.train import evaluate_run

DECODER_ROWS = 16400
"""Rows per call of the "decoder alone" contender: `iwae_bound`'s default chunk at B = 100."""


def _test_images(data_dir: Path, count: int) -> torch.Tensor:
    """The first ``count`` MNIST test images, uint8; random ones without the data."""
    try:
        return load_mnist(data_dir, split="test").images[:count]
    except (FileNotFoundError, OSError):
        return torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/mnist"))
    p.add_argument("--images", type=int, default=None, help="test images (default 200)")
    p.add_argument("--k", type=int, default=None, help="importance samples (default 5000)")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    count = args.images or (20 if args.quick else 200)
    k = args.k or (50 if args.quick else 5000)
    repeats = args.repeats or (1 if args.quick else 3)
    images = _test_images(args.data_dir, count)
    test = ImageDataset(images, torch.zeros(count, dtype=torch.long))

    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        torch.manual_seed(0)
        model = vae_preset((1, 28, 28), hidden=(200, 200), activation="tanh", latent_dim=50)
        fit(model, images[:100], run_dir=run, epochs=1, batch_size=100, lr=1e-3,
            device="cpu", show_progress=False, log=lambda line: None)  # fmt: skip
        model.eval()
        batches = TensorBatches(test, batch_size=100)
        latents = torch.randn(k * count, 50, generator=torch.Generator().manual_seed(3))

        def cli_path() -> object:
            return evaluate_run(run, iwae_k=k, test_set=test, show_progress=False)

        def no_grad_bound() -> object:
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                return [
                    iwae_bound(model, batch.images, num_samples=k, generator=generator).sum()
                    for batch in batches
                ]

        def decoder_alone() -> object:
            with torch.inference_mode():
                return [model.decode(part) for part in latents.split(DECODER_ROWS)]

        def decoder_and_softplus() -> object:
            with torch.inference_mode():
                return [F.softplus(model.decode(part)) for part in latents.split(DECODER_ROWS)]

        timings = interleave(
            {
                "genlatent eval path (evaluate_run)": cli_path,
                "the bound under no_grad": no_grad_bound,
                "decoder alone (the limit)": decoder_alone,
                "decoder + one softplus pass": decoder_and_softplus,
            },
            repeats=repeats,
        )
    rows = k * count
    limit = timings["decoder alone (the limit)"].median
    floor = timings["decoder + one softplus pass"].median
    table = [
        [name, f"{t.median:.2f}", f"{t.median / rows * 1e6:.3f}", f"{t.median / limit:.2f}",
         f"{t.median / floor:.2f}"]
        for name, t in timings.items()
    ]  # fmt: skip
    print(f"K = {k}, {count} test images ({rows:,} decoder rows)")
    print_table(
        ["contender", "s", "s per million rows", "time / decoder alone", "time / + softplus"],
        table,
    )
    payload: dict[str, Any] = {
        "k": k, "images": count, "decoder_rows": rows,
        **{
            name: t.as_dict() | {"seconds_per_million_rows": t.median / rows * 1e6,
                                 "time_over_decoder": t.median / limit,
                                 "time_over_decoder_and_softplus": t.median / floor}
            for name, t in timings.items()
        },
    }  # fmt: skip
    path = write_json("iwae_eval", payload, args.out, quick=args.quick)
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
