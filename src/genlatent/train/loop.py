"""The reference training loop: one epoch of training and one evaluation pass."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genlatent.train.objectives import StepLoss
from genlatent.train.progress import progress

__all__ = ["EpochResult", "NonFiniteLossError", "evaluate", "train_epoch"]

Objective = Callable[[nn.Module, torch.Tensor, "torch.Generator | None"], StepLoss]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the epoch, step and term."""


@dataclass(frozen=True)
class EpochResult:
    """Per-example means of the loss terms over an epoch, and how long it took."""

    metrics: dict[str, float]
    examples: int
    seconds: float
    skipped_steps: int = 0


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast for ``"bf16"``/``"fp16"``; nothing for ``"fp32"``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _shard(x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    return x if world == 1 else x[rank::world]


def _finite_on_all_replicas(flags: torch.Tensor) -> torch.Tensor:
    """Each flag is true only where it is true on every process (an all-reduce MIN)."""
    reduced = flags.to(torch.int32)
    torch.distributed.all_reduce(reduced, op=torch.distributed.ReduceOp.MIN)
    return reduced.bool()


def _check_finite(flags: torch.Tensor, names: list[str], epoch: int, step: int) -> None:
    finite = flags.tolist()
    if all(finite):
        return
    bad = [name for name, ok in zip(names, finite, strict=True) if not ok]
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch}, step {step}: {', '.join(bad)} is NaN or infinite; "
        "no checkpoint was written for this epoch (lower the learning rate, set grad_clip, "
        "or use skip_nonfinite)"
    )


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Any],
    objective: Objective,
    *,
    epoch: int,
    device: torch.device,
    precision: str = "fp32",
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
    skip_nonfinite: bool = False,
    generator: torch.Generator | None = None,
    rank: int = 0,
    world: int = 1,
    show_progress: bool | None = None,
) -> EpochResult:
    """Train ``model`` for one pass over ``batches``; return per-example means of each term.

    Sums are kept on the device and read once at the end: no host sync per step, except
    that the finiteness of each step's loss is checked one step late (when the device has
    long finished it), or at once with ``skip_nonfinite``, which skips such steps. With
    ``grad_clip`` (and no gradient scaler) the gradient norm is checked too, by the name
    ``gradient``; the fp16 scaler handles non-finite gradients itself.
    """
    model.train()
    sums: dict[str, torch.Tensor] = {}
    examples, skipped, pending = 0, 0, None
    bar = progress(
        batches, total=_length(batches), description=f"epoch {epoch}", enabled=show_progress
    )
    start = time.perf_counter()
    for step, batch in enumerate(bar, start=1):
        x = _shard(batch[0], rank, world).to(device, non_blocking=True)
        with autocast(device, precision):
            result = objective(model, x, generator)
        names = ["loss", *result.terms]
        flags = torch.stack(
            [torch.isfinite(result.loss), *map(torch.isfinite, result.terms.values())]
        )
        if world > 1:  # every replica must skip or stop together, or DDP's all-reduce hangs
            flags = _finite_on_all_replicas(flags)
        if skip_nonfinite and not bool(flags.all()):
            skipped += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        (scaler.scale(result.loss) if scaler is not None else result.loss).backward()
        if scaler is not None:
            scaler.unscale_(optimizer)
        if grad_clip is not None or skip_nonfinite:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
            if skip_nonfinite and scaler is None and not bool(torch.isfinite(norm)):
                skipped += 1
                continue
            if scaler is None:  # the norm is at hand: report a bad gradient by name
                flags = torch.cat([flags, torch.isfinite(norm).reshape(1)])
                names = [*names, "gradient"]
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if pending is not None:
            _check_finite(*pending)
        pending = (flags, names, epoch, step)
        n = x.shape[0]
        examples += n
        for name, value in [("loss", result.loss), *result.terms.items()]:
            sums[name] = sums.get(name, 0) + value.detach().float() * n
        if step % 20 == 0 and getattr(bar, "shown", True):  # a sync only when a bar is shown
            rate = examples / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"loss {result.loss.item():.4g}, {rate:,.0f} img/s")
    if pending is not None:
        _check_finite(*pending)
    bar.close()
    metrics, examples = _all_reduce_means(sums, examples, device, world)
    return EpochResult(metrics, examples, time.perf_counter() - start, skipped)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[Any],
    objective: Objective,
    *,
    device: torch.device,
    precision: str = "fp32",
    generator: torch.Generator | None = None,
    rank: int = 0,
    world: int = 1,
) -> dict[str, float]:
    """Per-example means of each loss term over ``batches``, in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    examples = 0
    for batch in batches:
        x = _shard(batch[0], rank, world).to(device, non_blocking=True)
        with autocast(device, precision):
            result = objective(model, x, generator)
        examples += x.shape[0]
        for name, value in [("loss", result.loss), *result.terms.items()]:
            sums[name] = sums.get(name, 0) + value.float() * x.shape[0]
    model.train(was_training)
    return _all_reduce_means(sums, examples, device, world)[0]


def _all_reduce_means(
    sums: dict[str, torch.Tensor], examples: int, device: torch.device, world: int
) -> tuple[dict[str, float], int]:
    names = sorted(sums)
    packed = torch.stack(
        [torch.as_tensor(sums[n], dtype=torch.float64, device=device) for n in names]
        + [torch.tensor(float(examples), dtype=torch.float64, device=device)]
    )
    if world > 1:
        torch.distributed.all_reduce(packed)
    values = packed.tolist()
    total = int(values[-1])
    return {n: v / max(total, 1) for n, v in zip(names, values[:-1], strict=True)}, total


def _length(batches: Iterable[Any]) -> int | None:
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        return None
