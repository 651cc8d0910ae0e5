"""The quantizer family's training steps against vector-quantize-pytorch's classes.

Each pair quantizes channel-last inputs ``(B, N, D)`` and runs one training step: forward
(with the state update where there is one) and backward of
``aux_loss + quantized.square().mean()`` to the inputs and parameters. The pairs are
configured alike:

- FSQ: levels ``[8, 5, 5, 5]`` (1000 codes), projections ``D -> 4 -> D``;
- LFQ: ``2**10`` codes, projections ``D -> 10 -> D``, entropy weight 0.1, diversity
  gamma 1, commitment weight 0.25, temperature 0.01 (the peer's ``inv_temperature=100``);
- ResidualVQ: 4 stages of 512 EMA codes (decay 0.99, eps 1e-5, commitment 0.25), the
  peer without k-means init, dead-code expiry or rotation trick;
- SimVQ: 512 codes, commitment 0.25 (the peer's ``input_to_quantize_commit_loss_weight``),
  straight-through (the peer's ``rotation_trick=False``);
- BSQ: LFQ's settings with ``spherical=True`` (codes on the unit sphere);
- ResidualFSQ and ResidualLFQ: 4 stages of FSQ ``[8, 5, 5, 5]`` or LFQ ``2**10``. Here the
  structures differ: ours is `ResidualQuantizer` over stages that each project
  ``D -> d -> D`` (the composition users write), the peer projects once around the stack
  and scales each stage's input (``levels**-s``, ``2**-s``).

Time is the median of interleaved repeats (`benchmarks._common.interleave`); peak memory
is the peak-RSS growth of one step in a fresh subprocess per contender and shape, as in
``benchmarks/quantizer.py``. FSQ also runs against ``plain``: a minimal FSQ written out
here in a dozen lines (the same projections, bound, straight-through round and
mixed-radix index, no checks, no code counts), the floor of what the maths costs in
eager PyTorch. A last section compares FSQ's and LFQ's codes with the peer's
on the same inputs.

Run: ``python -m benchmarks.quantizer_family`` (``--quick`` for a smoke test). On a busy
machine, run it in parts, each merged into the JSON: ``--family LFQ --shape 1`` times one
family at one shape (replacing those cases), ``--compare-only`` runs only the code
comparison.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks._common import (
    RESULTS_DIR,
    apply_threads,
    interleave,
    measure_in_subprocesses,
    parser,
    print_table,
    rss_growth,
    span,
    write_json,
)
from genlatent import FSQ, LFQ, ResidualQuantizer, ResidualVQ, SimVQ
from genlatent._validation import validate_args

LEVELS = [8, 5, 5, 5]
LFQ_SIZE = 2**10
RVQ_STAGES, RVQ_SIZE = 4, 512
SIMVQ_SIZE = 512
DECAY, EPS, BETA = 0.99, 1e-5, 0.25
SHAPES = [(128, 64, 16), (128, 1024, 64)]
QUICK_SHAPES = [(8, 16, 8)]
FAMILIES = ("FSQ", "LFQ", "ResidualVQ", "SimVQ", "BSQ", "ResidualFSQ", "ResidualLFQ")

Step = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _ours(family: str, dim: int) -> tuple[nn.Module, Step]:
    module: nn.Module
    if family == "FSQ":
        module = FSQ(LEVELS, dim=dim, channel_last=True)
    elif family in ("LFQ", "BSQ"):
        module = LFQ(LFQ_SIZE, dim=dim, commitment_weight=BETA, spherical=family == "BSQ",
                     temperature=0.01, channel_last=True)  # the peer's  # fmt: skip
    elif family == "SimVQ":
        module = SimVQ(SIMVQ_SIZE, dim, commitment_weight=BETA, channel_last=True)
    elif family == "ResidualFSQ":
        module = ResidualQuantizer(
            [FSQ(LEVELS, dim=dim, channel_last=True) for _ in range(RVQ_STAGES)]
        )
    elif family == "ResidualLFQ":
        module = ResidualQuantizer(
            [LFQ(LFQ_SIZE, dim=dim, commitment_weight=BETA, temperature=0.01, channel_last=True)
             for _ in range(RVQ_STAGES)]
        )  # fmt: skip
    else:
        module = ResidualVQ(
            RVQ_STAGES, RVQ_SIZE, dim, ema=True, decay=DECAY, eps=EPS, channel_last=True
        )

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with validate_args(False):  # as the trainer runs it: value checks off
            out = module(x)
        return out.quantized, out.loss

    return module, run


def _peer_step(module: nn.Module) -> Step:
    """The peer's call as ``(quantized, loss)``: its outputs are ``(quantized, indices)``
    (FSQ's, no loss), ``(quantized, indices, loss)`` or, for the residual ones, a loss per
    stage, which are summed."""

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quantized, *rest = module(x)
        if len(rest) == 1:  # (quantized, indices): FSQ has no auxiliary loss
            return quantized, quantized.new_zeros(())
        return quantized, rest[1].sum()

    return run


def _peer(family: str, dim: int) -> tuple[nn.Module, Step]:
    import vector_quantize_pytorch as vqp

    module: nn.Module
    if family == "FSQ":
        module = vqp.FSQ(levels=LEVELS, dim=dim)
    elif family in ("LFQ", "BSQ"):
        module = vqp.LFQ(
            dim=dim,
            codebook_size=LFQ_SIZE,
            entropy_loss_weight=0.1,
            diversity_gamma=1.0,
            commitment_loss_weight=BETA,
            spherical=family == "BSQ",
        )
    elif family == "SimVQ":
        module = vqp.SimVQ(dim=dim, codebook_size=SIMVQ_SIZE, rotation_trick=False,
                           input_to_quantize_commit_loss_weight=BETA)  # fmt: skip
    elif family == "ResidualFSQ":
        module = vqp.ResidualFSQ(dim=dim, levels=LEVELS, num_quantizers=RVQ_STAGES)
    elif family == "ResidualLFQ":
        module = vqp.ResidualLFQ(
            dim=dim,
            codebook_size=LFQ_SIZE,
            num_quantizers=RVQ_STAGES,
            entropy_loss_weight=0.1,
            diversity_gamma=1.0,
            commitment_loss_weight=BETA,
        )
    else:
        module = vqp.ResidualVQ(
            dim=dim,
            num_quantizers=RVQ_STAGES,
            codebook_size=RVQ_SIZE,
            decay=DECAY,
            eps=EPS,
            commitment_weight=BETA,
            kmeans_init=False,
            threshold_ema_dead_code=0,
            rotation_trick=False,
        )
    return module, _peer_step(module)


class _PlainFSQ(nn.Module):
    """FSQ as plainly as it can be written: the paper's bound, rounded straight through."""

    def __init__(self, levels: list[int], dim: int) -> None:
        super().__init__()
        self.project_in = nn.Linear(dim, len(levels))
        self.project_out = nn.Linear(len(levels), dim)
        count = torch.tensor(levels, dtype=torch.float32)
        self.half_level = (count - 1) * (1 - 1e-3) / 2
        self.offset = torch.where(count % 2 == 0, 0.5, 0.0)
        self.shift = torch.tan(self.offset / self.half_level)
        self.half_width = torch.floor(count / 2)
        self.place = torch.tensor([math.prod(levels[:c]) for c in range(len(levels))])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bounded = torch.tanh(self.project_in(x) + self.shift) * self.half_level - self.offset
        rounded = bounded + (bounded.round() - bounded).detach()
        indices = ((rounded.detach() + self.half_width).long() * self.place).sum(-1)
        return self.project_out(rounded / self.half_width), indices


def _plain(family: str, dim: int) -> tuple[nn.Module, Step]:
    if family != "FSQ":
        raise ValueError(f"only FSQ has a plain contender, got {family}")
    fsq = _PlainFSQ(LEVELS, dim)

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quantized, _ = fsq(x)
        return quantized, quantized.new_zeros(())

    return fsq, run


def _make(name: str, dim: int) -> Step:
    """``name`` is ``"genlatent:FAMILY"``, ``"peer:FAMILY"`` or ``"plain:FSQ"``; the module
    is in train mode."""
    side, family = name.split(":")
    module, run = {"genlatent": _ours, "peer": _peer, "plain": _plain}[side](family, dim)
    module.train()
    return run


def _train_step(fn: Step, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        x.grad = None
        quantized, loss = fn(x)
        (loss + quantized.square().mean()).backward()

    return step


def _inputs(shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).requires_grad_()


def _peak_memory_here(name: str, shape: tuple[int, int, int]) -> int:
    """Peak-RSS growth (bytes) of one training step (call in a fresh process)."""
    fn = _make(name, shape[-1])
    _train_step(fn, _inputs((2, 4, shape[-1])))()  # load kernels, start the autograd engine
    return rss_growth(_train_step(fn, _inputs(shape)))


def code_agreement(num_rows: int = 200_000) -> dict[str, Any]:
    """Do our FSQ and LFQ pick the peer's codes on the same inputs (no projections)?"""
    import vector_quantize_pytorch as vqp

    g = torch.Generator().manual_seed(1)
    report: dict[str, Any] = {}
    for levels in ([8, 5, 5, 5], [8, 6, 5], [7, 5, 5, 5, 5], [8, 8, 8, 5, 5, 5]):
        x = 2.0 * torch.randn(1, num_rows, len(levels), generator=g)
        ours = FSQ(levels, channel_last=True)(x)
        peer_quantized, peer_indices = vqp.FSQ(levels=levels)(x)
        differ = (ours.indices != peer_indices).reshape(-1)
        # the peer's bound: (L - 1)(1 + eps) / 2 and an artanh shift, where the paper's
        # reference code (and ours) has (1 - eps) and tan; rounding it our way:
        count = torch.tensor(levels, dtype=torch.float32)
        half_level = (count - 1) * (1 + 1e-3) / 2
        offset = torch.where(count % 2 == 0, 0.5, 0.0)
        bounded = torch.tanh(x + torch.atanh(offset / half_level)) * half_level - offset
        digits = torch.round(bounded).long() + (count // 2).long()
        places = torch.tensor([math.prod(levels[:c]) for c in range(len(levels))])
        report[f"FSQ {levels}"] = {
            "rows": num_rows,
            "differing_indices": int(differ.sum()),
            "max_abs_code_difference": float((ours.quantized - peer_quantized).abs().max()),
            "differing_indices_with_the_peers_bound": int(
                ((digits * places).sum(-1) != peer_indices).sum()
            ),
        }
    x = torch.randn(1, num_rows, 10, generator=g)
    ours = LFQ(LFQ_SIZE, channel_last=True)(x)
    peer_quantized, peer_indices, _ = vqp.LFQ(codebook_size=LFQ_SIZE, dim=10).eval()(x)
    # the peer reads the first channel as the most significant bit, we as the least
    bits = torch.arange(10)
    reversed_ours = (((ours.indices.unsqueeze(-1) >> bits) & 1) << (9 - bits)).sum(-1)
    report["LFQ 2**10"] = {
        "rows": num_rows,
        "same_codes": bool(torch.equal(ours.quantized, peer_quantized)),
        "same_indices": bool(torch.equal(ours.indices, peer_indices)),
        "same_indices_after_bit_reversal": bool(torch.equal(reversed_ours, peer_indices)),
    }
    return report


def _merge(payload: dict[str, Any], out: Path | None, *, quick: bool) -> dict[str, Any]:
    """A partial run (one family or shape) replaces only its cases in the existing JSON."""
    default = RESULTS_DIR / "quick" if quick else RESULTS_DIR
    path = out if out is not None else default / "quantizer_family.json"
    if not path.is_file():
        return payload
    previous = json.loads(path.read_text())
    done = {(tuple(case["shape"]), case["family"]) for case in payload["cases"]}
    kept = [c for c in previous["cases"] if (tuple(c["shape"]), c["family"]) not in done]
    order = {family: index for index, family in enumerate(FAMILIES)}
    cases = sorted(kept + payload["cases"], key=lambda c: (c["shape"], order[c["family"]]))
    agreement = payload["code_agreement"] or previous.get("code_agreement", {})
    return {**payload, "cases": cases, "code_agreement": agreement}


def _peer_version() -> str | None:
    try:
        import vector_quantize_pytorch  # noqa: F401
    except ImportError:
        print("vector-quantize-pytorch is not installed: the peers are absent")
        return None
    return metadata.version("vector-quantize-pytorch")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--memory-case", nargs=2, metavar=("NAME", "B,N,D"), help="(internal)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument(
        "--family",
        choices=FAMILIES,
        default=None,
        help="one family only (merged into the JSON)",
    )
    p.add_argument(
        "--shape",
        type=int,
        default=None,
        help="one shape only, by index (merged)",
    )
    p.add_argument("--compare-only", action="store_true", help="only compare codes with the peer")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.memory_case:
        name, shape_arg = args.memory_case
        b, n, d = (int(v) for v in shape_arg.split(","))
        peak = _peak_memory_here(name, (b, n, d))
        print(json.dumps({"peak_bytes": peak}))
        return {"peak_bytes": peak}

    peer = _peer_version()
    sides = ["genlatent"] + (["peer"] if peer else [])
    shapes = [] if args.compare_only else QUICK_SHAPES if args.quick else SHAPES
    if args.shape is not None and shapes:
        shapes = [shapes[args.shape]]
    families = FAMILIES if args.family is None else (args.family,)
    cases, rows = [], []
    for shape in shapes:
        big = shape[1] * shape[2] >= 1024 * 64
        repeats = args.repeats or (3 if args.quick or big else 7)
        for family in families:
            torch.manual_seed(0)
            names = [f"{side}:{family}" for side in sides]
            if family == "FSQ":
                names.append("plain:FSQ")
            steps = {name: _train_step(_make(name, shape[-1]), _inputs(shape)) for name in names}
            timings = interleave(steps, repeats=repeats, warmup=1)
            memory: dict[str, int] = {}
            if not args.no_memory:
                shape_arg = ",".join(map(str, shape))
                peaks = measure_in_subprocesses(
                    "benchmarks.quantizer_family", [[name, shape_arg] for name in names]
                )
                memory = dict(zip(names, peaks, strict=True))
            ours = timings[names[0]]
            case: dict[str, Any] = {"shape": list(shape), "family": family}
            for name in names:
                entry: dict[str, Any] = timings[name].as_dict()
                entry["time_over_genlatent"] = timings[name].median / ours.median
                if name in memory:
                    entry["peak_memory_bytes"] = memory[name]
                    entry["memory_over_genlatent"] = memory[name] / max(memory[names[0]], 1)
                case[name] = entry
                rows.append(
                    [
                        str(shape),
                        name,
                        span(timings[name], 1e3),
                        f"{timings[name].median / ours.median:.2f}x",
                        f"{memory[name] / 2**20:,.1f}" if name in memory else "-",
                    ]
                )
            cases.append(case)
    if rows:
        print_table(
            ["input (B, N, D)", "contender", "ms/step median (range)", "time / ours", "peak MiB"],
            rows,
        )
    partial = args.family is not None or args.shape is not None or args.compare_only
    compare = peer and (args.compare_only or not partial)
    agreement = code_agreement(2_000 if args.quick else 200_000) if compare else {}
    for what, result in agreement.items():
        print(f"{what}: {result}")
    payload = {
        "what": "training step (forward, state update, backward) of FSQ, LFQ, ResidualVQ",
        "peers": {"vector-quantize-pytorch": peer},
        "cases": cases,
        "code_agreement": agreement,
    }
    if partial:
        payload = _merge(payload, args.out, quick=args.quick)
    path = write_json("quantizer_family", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
