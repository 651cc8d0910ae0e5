"""`VectorQuantizer` (EMA) training step vs vector-quantize-pytorch and a minimal reference.

Each contender quantizes channel-last inputs ``(B, N, D)`` against 512 codes with an EMA
codebook (decay 0.99, eps 1e-5, commitment weight 0.25) and runs one training step:
forward (nearest code, straight-through, commitment loss), the EMA codebook update, and
backward of ``loss + quantized.square().mean()`` to the inputs. vector-quantize-pytorch
is configured for the same semantics (``rotation_trick=False``, no k-means init, no dead
code expiry). The minimal reference is written out below in about 20 lines.

Peak memory is measured in a fresh subprocess per contender and shape: the growth of the
process's peak resident set size over one training step (``VmHWM`` after it, reset just
before it, minus ``VmRSS`` before it), after a warm-up step on a tiny input and with the
module and inputs already allocated. It counts every byte the step touched at its high
point, torch's or not; Linux only.

Run: ``python -m benchmarks.quantizer`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import metadata
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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

CODEBOOK_SIZE = 512
DECAY, EPS, BETA = 0.99, 1e-5, 0.25
SHAPES = [(128, 64, 16), (128, 1024, 64)]
QUICK_SHAPES = [(8, 16, 8)]


class MinimalEMAQuantizer(nn.Module):
    """A straight-through EMA quantizer in about 20 lines: the floor to compare with."""

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor

    def __init__(self, codebook_size: int, dim: int) -> None:
        super().__init__()
        codebook = torch.empty(codebook_size, dim).uniform_(-1 / codebook_size, 1 / codebook_size)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", codebook.clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, codebook = x.reshape(-1, x.shape[-1]), self.codebook
        dist = torch.addmm(codebook.pow(2).sum(1), rows.detach(), codebook.T, alpha=-2.0)
        indices = dist.argmin(1)
        selected = codebook[indices]
        loss = BETA * F.mse_loss(rows, selected)
        if self.training:
            with torch.no_grad():
                counts = torch.zeros(len(codebook)).index_add_(0, indices, torch.ones(len(rows)))
                sums = torch.zeros_like(codebook).index_add_(0, indices, rows)
                self.cluster_size.mul_(DECAY).add_(counts, alpha=1 - DECAY)
                self.embed_sum.mul_(DECAY).add_(sums, alpha=1 - DECAY)
                n = self.cluster_size.sum()
                size = (self.cluster_size + EPS) / (n + len(codebook) * EPS) * n
                codebook.copy_(self.embed_sum / size.unsqueeze(1))
        quantized = rows + (selected - rows).detach()
        return quantized.reshape(x.shape), loss


def _make(name: str, dim: int) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A function ``x -> (quantized, loss)`` for contender ``name``, in training mode."""
    if name in ("genlatent", "genlatent+checks"):
        quantizer = VectorQuantizer(
            CODEBOOK_SIZE,
            dim,
            ema=True,
            decay=DECAY,
            eps=EPS,
            commitment_weight=BETA,
            channel_last=True,
        )
        checks = name == "genlatent+checks"

        def run_genlatent(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # as the trainer runs it: NaN/inf value checks off
            with validate_args(checks):
                out = quantizer(x)
            return out.quantized, out.loss

        return run_genlatent
    if name == "minimal":
        return MinimalEMAQuantizer(CODEBOOK_SIZE, dim)
    if name == "vector-quantize-pytorch":
        from vector_quantize_pytorch import VectorQuantize

        peer = VectorQuantize(
            dim=dim,
            codebook_size=CODEBOOK_SIZE,
            decay=DECAY,
            eps=EPS,
            commitment_weight=BETA,
            rotation_trick=False,
            kmeans_init=False,
            threshold_ema_dead_code=0,
        )

        def run_peer(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            quantized, _, loss = peer(x)
            return quantized, loss

        return run_peer
    raise ValueError(f"unknown contender {name!r}")


def _train_step(fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor):
    def step() -> None:
        x.grad = None
        quantized, loss = fn(x)
        (loss + quantized.square().mean()).backward()

    return step


def _inputs(shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.1).requires_grad_()


def _peak_memory_here(name: str, shape: tuple[int, int, int]) -> int:
    """Peak-RSS growth (bytes) of one training step (call in a fresh process)."""
    fn = _make(name, shape[-1])
    _train_step(fn, _inputs((2, 4, shape[-1])))()  # load kernels, start the autograd engine
    return rss_growth(_train_step(fn, _inputs(shape)))


def peak_memory(names: list[str], shape: tuple[int, int, int]) -> dict[str, int]:
    """Each contender's peak-memory growth, each measured in a fresh subprocess."""
    shape_arg = ",".join(map(str, shape))
    peaks = measure_in_subprocesses("benchmarks.quantizer", [[n, shape_arg] for n in names])
    return dict(zip(names, peaks, strict=True))


def _peer_version() -> str | None:
    try:
        import vector_quantize_pytorch  # noqa: F401
    except ImportError:
        print(
            "vector-quantize-pytorch is not installed: that peer is absent "
            "(pip install 'genlatent[bench]')"
        )
        return None
    return metadata.version("vector-quantize-pytorch")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--memory-case", nargs=2, metavar=("NAME", "B,N,D"), help="(internal)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.memory_case:
        name, shape_arg = args.memory_case
        b, n, d = (int(v) for v in shape_arg.split(","))
        peak = _peak_memory_here(name, (b, n, d))
        print(json.dumps({"peak_bytes": peak}))
        return {"peak_bytes": peak}

    peer = _peer_version()
    names = ["genlatent", "minimal"] + (["vector-quantize-pytorch"] if peer else [])
    if not args.quick:
        names.insert(1, "genlatent+checks")
    shapes = QUICK_SHAPES if args.quick else SHAPES
    cases = []
    rows = []
    for shape in shapes:
        torch.manual_seed(0)
        big = shape[1] * shape[2] >= 1024 * 64
        repeats = args.repeats or (3 if args.quick else (7 if big else 30))
        steps = {name: _train_step(_make(name, shape[-1]), _inputs(shape)) for name in names}
        timings = interleave(steps, repeats=repeats, warmup=1, inner=1 if big else 3)
        # a quick run measures genlatent's memory only (one subprocess, a smoke test)
        memory = {} if args.no_memory else peak_memory(names[:1] if args.quick else names, shape)
        ours = timings["genlatent"].median
        case: dict[str, Any] = {"shape": list(shape), "codebook_size": CODEBOOK_SIZE}
        for name in names:
            entry: dict[str, Any] = timings[name].as_dict()
            entry["speedup_of_genlatent"] = timings[name].median / ours
            if name in memory:
                entry["peak_memory_bytes"] = memory[name]
            case[name] = entry
            mem = f"{memory[name] / 2**20:,.1f}" if name in memory else "-"
            rows.append(
                [
                    str(shape),
                    name,
                    span(timings[name], 1e3),
                    f"{timings[name].median / ours:.2f}x",
                    mem,
                ]
            )
        cases.append(case)
    print_table(
        [
            "input (B, N, D)",
            "contender",
            "ms/step median (range)",
            "time / genlatent's",
            "peak MiB",
        ],
        rows,
    )
    payload = {
        "what": "EMA quantizer training step: forward, EMA update, backward",
        "peers": {"vector-quantize-pytorch": peer},
        "cases": cases,
    }
    path = write_json("quantizer", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
