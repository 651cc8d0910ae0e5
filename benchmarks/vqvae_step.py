"""VQ-VAE training step: achieved GFLOP/s against a matmul and a conv peak, NCHW vs channels_last.

One sample is one step of genlatent's reference trainer (`genlatent.train.loop.train_epoch`
over a single batch, `VQVAE.loss` through `LossModule`, Adam as `fit` builds it) on a batch
of 128 random
32x32x3 images, for `genlatent.models.cifar10_vqvae` at the reference width (512 hidden
channels) and a reduced one (64), each with contiguous (NCHW) and ``channels_last``
tensors. The step's FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``
(convolutions and matmuls, forward and backward, the quantizer's distance matmul
included). Two peaks are timed in the same rounds: a ``2048 x 2048`` float32 matmul and a
3x3 convolution of the reference model's widest shape (512 -> 512 channels on 8x8, batch
128); the step's fraction is of the larger.

Run: ``python -m benchmarks.vqvae_step`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._common import (
    apply_threads,
    gflops,
    interleave,
    parser,
    print_table,
    span,
    write_json,
)
from genlatent.models import cifar10_vqvae
from genlatent.train.loop import LossModule, StepSettings, train_epoch
from genlatent.train.optimizers import adam

MATMUL_SIZE = 2048


def _step(hidden: int, batch: int, channels_last: bool) -> tuple[Any, float]:
    """A training step of the model at width ``hidden``, and its FLOPs."""
    torch.manual_seed(0)
    model = cifar10_vqvae(hidden_channels=hidden)
    x = torch.rand(batch, 3, 32, 32)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = adam(model.parameters(), 2e-4, torch.device("cpu"))
    batches = [(x,)]
    module, settings = LossModule(model), StepSettings(x.device)

    def step() -> None:
        train_epoch(module, optimizer, batches, settings, epoch=1, show_progress=False)

    counter = FlopCounterMode(display=False)
    with counter:
        loss = module(x).loss
        loss.backward()
    model.zero_grad(set_to_none=True)
    return step, float(counter.get_total_flops())


def _conv_peak(hidden: int, batch: int) -> tuple[Any, float]:
    conv = nn.Conv2d(hidden, hidden, 3, padding=1, bias=False)
    x = torch.randn(batch, hidden, 8, 8)
    flops = 2.0 * batch * 8 * 8 * hidden * hidden * 9

    @torch.no_grad()
    def run() -> None:
        conv(x)

    return run, flops


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.quick:
        batch, configs, repeats = 4, {"reference": 16, "reduced": 8}, args.repeats or 2
    else:
        batch, configs, repeats = 128, {"reference": 512, "reduced": 64}, args.repeats or 5
    contenders: dict[str, Any] = {}
    flops: dict[str, float] = {}
    meta: dict[str, dict[str, Any]] = {}
    for config, hidden in configs.items():
        for channels_last in (False, True):
            name = f"{config} {'channels_last' if channels_last else 'NCHW'}"
            contenders[name], flops[name] = _step(hidden, batch, channels_last)
            meta[name] = {"hidden_channels": hidden, "channels_last": channels_last}
    size = 256 if args.quick else MATMUL_SIZE
    a, b = torch.randn(size, size), torch.randn(size, size)
    contenders["matmul peak"] = lambda: torch.mm(a, b)
    flops["matmul peak"] = 2.0 * size**3
    contenders["conv peak"], flops["conv peak"] = _conv_peak(max(configs.values()), batch)
    timings = interleave(contenders, repeats=repeats, warmup=1)

    rates = {name: gflops(flops[name], t.median) for name, t in timings.items()}
    peak = max(rates["matmul peak"], rates["conv peak"])
    rows, results = [], {}
    for name, timing in timings.items():
        fraction = rates[name] / peak
        results[name] = {
            **timing.as_dict(),
            **meta.get(name, {}),
            "flops": flops[name],
            "gflops": rates[name],
            "fraction_of_peak": fraction,
        }
        rows.append(
            [name, span(timing, 1e3), f"{flops[name] / 1e9:,.1f}", rates[name], f"{fraction:.0%}"]
        )
    for config in configs:
        nchw, cl = timings[f"{config} NCHW"], timings[f"{config} channels_last"]
        results[f"{config} channels_last speedup"] = nchw.median / cl.median
    print_table(["step", "ms median (range)", "GFLOP", "GFLOP/s", "of peak"], rows)
    for config in configs:
        print(f"{config}: channels_last is {results[f'{config} channels_last speedup']:.2f}x NCHW")
    payload = {
        "what": "VQ-VAE (cifar10_vqvae) training step, Adam, batch of 32x32x3 images",
        "batch_size": batch,
        "peak_gflops": peak,
        "results": results,
    }
    path = write_json("vqvae_step", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
