"""The IWAE bound's evaluation against its physical limit, and an IWAE training step
against a plain reimplementation.

1. **Evaluation** (`iwae_bound`, no gradients) of the reference MNIST VAE at $k$
   importance samples on a batch of binary images, against the implementation genlatent
   shipped before (commit 3e34c58, the one the issue timed), the decoder alone on the same
   $k \\cdot B$ latents (the part no implementation of the bound can skip) and against the
   naive estimator one writes first (``x`` repeated $k$ times, a plain
   ``binary_cross_entropy_with_logits``, ``logsumexp``). The decoder's GFLOP/s shows how
   close to the machine's matmul rate the whole evaluation runs.
2. **Training step** of ``VAE.loss(x, iwae_samples=k)`` (forward and backward) against
   the same plain reimplementation with gradients.

All contenders run interleaved in one process (`benchmarks._common.interleave`); the
ratios are the point, the absolute times depend on the machine and its load.

Run: ``python -m benchmarks.iwae`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks._common import apply_threads, gflops, interleave, parser, print_table, write_json
from genlatent.metrics import iwae_bound
from genlatent.models import VAE, mnist_vae


def plain_iwae(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """The estimator as usually written: repeat x, decode, BCE, logsumexp. (B,) bounds."""
    mean, log_var = model.encode(x)
    std = torch.exp(0.5 * log_var)
    eps = torch.randn(k, *mean.shape, generator=generator)
    z = mean + std * eps  # (k, B, D)
    logits = model.decode(z.reshape(-1, z.shape[-1])).reshape(k, x.shape[0], -1)
    target = x.flatten(1).expand(k, -1, -1)
    log_px = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)
    log_pz = -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)
    log_qz = -0.5 * (eps.square() + log_var + math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(k)


def legacy_iwae_bound(
    model: VAE, x: torch.Tensor, k: int, generator: torch.Generator, chunk_size: int = 64
) -> torch.Tensor:
    """`iwae_bound` as genlatent shipped it before the VAE-family work (commit 3e34c58),
    the implementation the issue timed: chunks of 64 samples, ``x`` repeated per chunk,
    the elementwise Bernoulli log-likelihood, the value checks of every chunk."""
    mean, log_var = model.encode(x)
    std = torch.exp(0.5 * log_var)
    log_2pi = math.log(2 * math.pi)
    neg_half_sum_log_var = -0.5 * log_var.sum(dim=-1)

    def chunk(count: int) -> torch.Tensor:
        eps = torch.stack([torch.randn(mean.shape, generator=generator) for _ in range(count)])
        z = mean + std * eps
        log_prior = -0.5 * (z.pow(2) + log_2pi).sum(dim=-1)
        log_posterior = neg_half_sum_log_var - 0.5 * (eps.pow(2) + log_2pi).sum(dim=-1)
        x_rep = x.repeat(count, *([1] * (x.ndim - 1)))
        logits = model.decode(z.reshape(-1, z.shape[-1])).reshape(x_rep.shape)
        # the old log_likelihood's checks: x in [0, 1] and finite logits, each a pass and a sync
        if not bool(((x_rep >= 0) & (x_rep <= 1)).all()) or not bool(logits.isfinite().all()):
            raise ValueError("x must lie in [0, 1] and the logits be finite")
        bce = F.binary_cross_entropy_with_logits(logits, x_rep, reduction="none")
        log_px = -bce.flatten(1).sum(1)
        return torch.logsumexp(log_px.reshape(count, -1) + log_prior - log_posterior, dim=0)

    total = chunk(min(chunk_size, k))
    for start in range(chunk_size, k, chunk_size):
        total = torch.logaddexp(total, chunk(min(chunk_size, k - start)))
    return total - math.log(k)


def decoder_flops(model: VAE, rows: int) -> float:
    """2 * rows * (weights of the decoder's linear layers): its matmul work."""
    weights = sum(
        m.weight.numel() for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)
    )
    return 2.0 * rows * weights


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    apply_threads(args.threads)
    batch, k_eval, k_train = (10, 50, 5) if args.quick else (100, 1000, 50)
    repeats = args.repeats or (2 if args.quick else 5)
    torch.manual_seed(0)
    model = mnist_vae().eval()
    x = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(1)).round()
    g = torch.Generator()

    def ours() -> torch.Tensor:
        with torch.no_grad():
            return iwae_bound(model, x, num_samples=k_eval, generator=g.manual_seed(2))

    def plain() -> torch.Tensor:
        with torch.no_grad():
            chunks = [plain_iwae(model, x, k_eval // 10, g) for _ in range(10)]
        return torch.stack(chunks).logsumexp(0) - math.log(10)  # 10 chunks, as memory needs

    def legacy() -> torch.Tensor:
        with torch.no_grad():
            return legacy_iwae_bound(model, x, k_eval, g.manual_seed(2))

    latents = torch.randn(
        k_eval * batch, model.latent_dim, generator=torch.Generator().manual_seed(3)
    )

    def decoder_only() -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model.decode(part) for part in latents.split(16400)])

    with torch.no_grad():
        reference = plain_iwae(model, x, k_eval, torch.Generator().manual_seed(2))
        difference = float((ours() - reference).abs().max())
        legacy_difference = float((legacy() - reference).abs().max())
    evaluation = interleave(
        {
            "genlatent iwae_bound": ours,
            "genlatent before (3e34c58)": legacy,
            "plain reimplementation": plain,
            "decoder alone": decoder_only,
        },
        repeats=repeats,
    )
    rate = gflops(decoder_flops(model, k_eval * batch), evaluation["decoder alone"].median)

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)

    def train_ours() -> None:
        optimizer.zero_grad()
        model.loss(x, iwae_samples=k_train, generator=g.manual_seed(4)).loss.backward()

    def train_plain() -> None:
        optimizer.zero_grad()
        (-plain_iwae(model, x, k_train, g.manual_seed(4)).mean()).backward()

    training = interleave({"genlatent": train_ours, "plain": train_plain}, repeats=repeats)

    base = evaluation["genlatent iwae_bound"].median
    rows = [
        [name, f"{t.median * 1e3:.1f}", f"{t.median / base:.2f}"] for name, t in evaluation.items()
    ]
    print(
        f"evaluation: k = {k_eval}, B = {batch} ({k_eval * batch:,} decoder rows); "
        f"decoder at {rate:.1f} GFLOP/s; |ours - plain| = {difference:.2e} nats (same noise)"
    )
    print_table(["contender", "ms", "time / genlatent"], rows)
    step = training["genlatent"].median
    print(f"\ntraining step: k = {k_train}, B = {batch}")
    print_table(
        ["contender", "ms", "time / genlatent"],
        [[n, f"{t.median * 1e3:.1f}", f"{t.median / step:.2f}"] for n, t in training.items()],
    )
    payload: dict[str, Any] = {
        "evaluation": {
            "k": k_eval, "batch": batch, "max_abs_difference_nats": difference,
            "legacy_max_abs_difference_nats": legacy_difference,
            "decoder_gflops": rate,
            **{
                name: t.as_dict() | {"time_over_genlatent": t.median / base}
                for name, t in evaluation.items()
            },
        },
        "training_step": {
            "k": k_train, "batch": batch,
            **{
                name: t.as_dict() | {"time_over_genlatent": t.median / step}
                for name, t in training.items()
            },
        },
    }  # fmt: skip
    path = write_json("iwae", payload, args.out, quick=args.quick)
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
