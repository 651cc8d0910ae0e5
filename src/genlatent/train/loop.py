"""The reference training loop: one epoch of training and one evaluation pass, by protocol.

Both passes call ``model.loss`` through `LossModule` (so DistributedDataParallel and
``torch.compile`` see a ``forward``) with the keyword arguments it declares, and read the
result with `genlatent._protocols.loss_parts`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from genlatent._protocols import LossParts, declared_keywords, loss_parts
from genlatent._sums import ExampleSums, means_of
from genlatent._validation import validate_args
from genlatent.errors import NonFiniteLossError
from genlatent.train.progress import progress

__all__ = [
    "EpochResult",
    "LossModule",
    "NonFiniteLossError",
    "StepSettings",
    "TrainSteps",
    "evaluate_epoch",
    "optimizer_step",
    "train_epoch",
]


class LossModule(nn.Module):
    """``forward(x, labels, step, generator)`` calls ``model.loss`` with what it declares.

    The signature of ``model.loss`` is read once, here. ``options`` (for example
    ``{"beta": 4.0}``) are keyword arguments of the training objective: they are passed in
    training mode only, so that evaluation (in eval mode) scores the model's own default
    loss, its true bound. `train_epoch` and `evaluate_epoch` turn the value checks of
    `set_validate_args` off once per epoch (never per step): the loop checks each term for
    finiteness itself and names the one that failed.

    Raises:
        TypeError: if ``model`` has no ``loss`` method, or ``loss`` does not take one of
            ``options`` (an option that would otherwise be silently ignored).
    """

    def __init__(self, model: nn.Module, options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        loss = getattr(model, "loss", None)
        if not callable(loss):
            raise TypeError(
                f"model ({type(model).__name__}) does not follow the model protocol: it has no "
                "loss(x) method (see genlatent.Model)"
            )
        self.model = model
        self.declared = declared_keywords(loss)
        self.options = dict(options or {})
        reserved = [name for name in self.options if name in ("labels", "step", "generator")]
        if reserved:
            raise ValueError(
                f"training options must not name {', '.join(reserved)}: the trainer passes "
                "labels, step and generator itself"
            )
        taken = declared_keywords(loss, tuple(self.options))
        unknown = [name for name in self.options if name not in taken]
        if unknown:
            raise TypeError(
                f"{type(model).__name__}.loss does not take the training option(s) "
                f"{', '.join(unknown)}; a model whose loss ignored them would train on "
                "another objective than the one asked for"
            )

    def forward(
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        step: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Any:
        offered = {"labels": labels, "step": step, "generator": generator}
        kwargs = {k: v for k, v in offered.items() if k in self.declared and v is not None}
        if self.training:
            kwargs |= self.options
        return self.model.loss(x, **kwargs)  # type: ignore[operator]


@dataclass(frozen=True)
class StepSettings:
    """How each step runs: device, precision and the handling of non-finite values."""

    device: torch.device
    precision: str = "fp32"
    grad_clip: float | None = None
    skip_nonfinite: bool = False
    rank: int = 0
    world: int = 1


@dataclass(frozen=True)
class EpochResult:
    """Per-example means of the loss terms over an epoch, and how long it took."""

    metrics: dict[str, float]
    examples: int
    seconds: float
    skipped_steps: int = 0
    code_counts: torch.Tensor | None = field(default=None, repr=False)
    """The epoch's code counts summed over steps and processes, if reported (float64 from
    a CPU run, float32 from any other device: see `genlatent._sums`)."""
    steps: int = 0
    """The batches of the epoch, skipped steps included (the global step advances by it)."""


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast for ``"bf16"``/``"fp16"``; nothing for ``"fp32"``."""
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=precision != "fp32")


def _shard(x: torch.Tensor | None, settings: StepSettings, sharded: bool) -> torch.Tensor | None:
    return None if x is None else _shard_images(x, settings, sharded)


def _shard_images(images: torch.Tensor, settings: StepSettings, sharded: bool) -> torch.Tensor:
    """This process's part of a batch that every process holds whole: rows ``rank::world``.

    A batch of $B <$ ``world`` rows would leave the processes from rank $B$ on with none
    (and an empty loss); each of them takes row ``rank mod B`` instead, so every process
    steps (DDP all-reduces every step) on at least one example. Batches that are already
    this process's own shard (``sharded``, as `StreamBatches` gives) are not split.
    """
    x = images
    if settings.world > 1 and not sharded:
        rows = images.shape[0]
        start = settings.rank if settings.rank < rows else settings.rank % max(rows, 1)
        x = images[start :: settings.world]
    return x.to(settings.device, non_blocking=True)


def is_sharded(batches: Iterable[Any]) -> bool:
    """Whether ``batches`` already hold only this process's shard (their ``sharded`` flag)."""
    return bool(getattr(batches, "sharded", False))


def _batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, (tuple, list)):
        return batch[0], batch[1] if len(batch) > 1 else None
    return batch, None


class _Sums:
    """Example-weighted sums of the terms and the summed code counts, kept on the device."""

    def __init__(self, device: torch.device) -> None:
        self.sums = ExampleSums(device)
        self.counts: torch.Tensor | None = None

    @property
    def examples(self) -> int:
        return self.sums.examples

    def add(self, parts: LossParts, n: int) -> None:
        self.sums.add({"loss": parts.loss, **parts.terms}, examples=n)
        if parts.code_counts is not None:
            counts = parts.code_counts.detach().to(self.sums.dtype)
            self.counts = counts if self.counts is None else self.counts + counts

    def reduce(self, settings: StepSettings) -> tuple[dict[str, float], int, torch.Tensor | None]:
        """Per-example means over every process, the example count and the counts."""
        names, packed = self.sums.packed(sorted(self.sums.totals))  # one order on every rank
        counts = self.counts
        if settings.world > 1:
            torch.distributed.all_reduce(packed)
            if counts is not None:
                torch.distributed.all_reduce(counts)
        totals = packed.tolist()
        return means_of(names, totals), int(totals[-1]), None if counts is None else counts.cpu()


def _finite_flags(parts: LossParts, settings: StepSettings) -> tuple[torch.Tensor, list[str]]:
    names = ["loss", *parts.terms]
    flags = torch.stack([torch.isfinite(parts.loss), *map(torch.isfinite, parts.terms.values())])
    if settings.world > 1:  # every replica must skip or stop together, or DDP's all-reduce hangs
        reduced = flags.to(torch.int32)
        torch.distributed.all_reduce(reduced, op=torch.distributed.ReduceOp.MIN)
        flags = reduced.bool()
    return flags, names


def _check_finite(flags: torch.Tensor, names: list[str], epoch: int, step: int) -> None:
    finite = flags.tolist()
    if all(finite):
        return
    bad = [name for name, ok in zip(names, finite, strict=True) if not ok]
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch}, step {step}: {', '.join(bad)} is NaN or infinite; "
        "no checkpoint was written for this epoch (lower the learning rate, set grad_clip "
        "(--grad-clip), or skip such steps with skip_nonfinite (--skip-nonfinite))"
    )


def optimizer_step(
    parameters: list[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    settings: StepSettings,
) -> tuple[bool, torch.Tensor | None]:
    """One optimizer step on the gradients already accumulated: whether it was taken, and
    the gradient norm if it was computed.

    Unscales (fp16), clips to ``grad_clip``, steps and updates the scaler. With
    ``skip_nonfinite`` a step whose gradient norm is not finite is not taken (the fp16
    scaler skips such steps itself). A run with several optimizers calls it once per
    optimizer, each with its own parameters and scaler.
    """
    scaler.unscale_(optimizer)
    norm = None
    if settings.grad_clip is not None or settings.skip_nonfinite:
        norm = torch.nn.utils.clip_grad_norm_(parameters, settings.grad_clip or float("inf"))
        if settings.skip_nonfinite and not scaler.is_enabled() and not bool(norm.isfinite()):
            return False, norm
    scaler.step(optimizer)
    scaler.update()
    return True, norm


def _no_sync(module: nn.Module, syncing: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP's ``no_sync`` on a micro-batch whose gradient is not yet to be all-reduced."""
    no_sync = getattr(module, "no_sync", None)
    return contextlib.nullcontext() if syncing or no_sync is None else no_sync()


def _weighted(parts: list[LossParts], weights: list[float]) -> LossParts:
    """The terms of a step's micro-batches, each weighted by its share of the examples."""
    if len(parts) == 1:
        return parts[0]
    loss = sum(p.loss.detach() * w for p, w in zip(parts, weights, strict=True))
    terms = {
        name: sum(p.terms[name].detach() * w for p, w in zip(parts, weights, strict=True))
        for name in parts[0].terms
    }
    return LossParts(cast(torch.Tensor, loss), cast(dict[str, torch.Tensor], terms), None)


class TrainSteps:
    """The training steps of a run, one batch at a time, and the sums since the last read.

    `step` runs one optimizer step on one or more micro-batches (forward, finiteness and
    backward of each, its loss weighted by its share of the step's examples, so that $k$
    batches of $b$ give the gradient of one batch of $kb$; then clip and step);
    `interval` reads the per-example means of the terms since the previous `interval` and
    starts a new sum. Sums stay on the device and are read once per `interval`: no host
    sync per step, except that the finiteness of each step's terms is checked one step
    late (when the device has long finished it), or at once with ``skip_nonfinite``, which
    skips such steps. With ``grad_clip`` the gradient norm is checked too, by the name
    ``gradient``. Call `check_pending` before saving or evaluating: the last step's check.

    Args:
        module: a `LossModule` (possibly inside DDP or ``torch.compile``).
        optimizer: the optimizer of ``module``'s parameters.
        settings: device, precision and the handling of non-finite values.
        scaler: the fp16 gradient scaler (a disabled one when ``None``).
        generator: the trainer's noise, passed to ``model.loss``.
    """

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        settings: StepSettings,
        *,
        scaler: torch.amp.GradScaler | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.module, self.optimizer, self.settings, self.generator = (
            module, optimizer, settings, generator,
        )  # fmt: skip
        self.scaler = scaler or torch.amp.GradScaler(settings.device.type, enabled=False)
        self.parameters = [p for p in module.parameters() if p.requires_grad]
        self.sums, self.skipped, self.steps = _Sums(settings.device), 0, 0
        self.started = time.perf_counter()
        self.pending: tuple[torch.Tensor, list[str], int, int] | None = None

    def step(
        self, batches: Sequence[Any], *, step: int, epoch: int, position: int
    ) -> LossParts | None:
        """One optimizer step on the micro-batches ``batches`` as global step ``step``,
        ending at batch ``position`` (from 1) of epoch ``epoch`` (both name a non-finite
        step); its terms (example-weighted over the micro-batches), or ``None`` where the
        step was skipped (``skip_nonfinite``). Under DDP the gradients of all but the last
        micro-batch are not all-reduced (``no_sync``)."""
        settings, sharded = self.settings, self._sharded
        if not self.module.training:  # evaluation or pictures ran since the last step
            self.module.train()
        self.steps += 1
        inputs = [self._inputs(batch, sharded) for batch in batches]
        total = sum(x.shape[0] for x, _ in inputs)
        weights = [x.shape[0] / max(total, 1) for x, _ in inputs]
        self.optimizer.zero_grad(set_to_none=True)
        parts_seen, flags_seen = [], []
        for index, ((x, labels), weight) in enumerate(zip(inputs, weights, strict=True)):
            with _no_sync(self.module, syncing=index == len(inputs) - 1):
                with autocast(settings.device, settings.precision):
                    parts = loss_parts(self.module(x, labels, step, self.generator))
                flags, names = _finite_flags(parts, settings)
                if settings.skip_nonfinite and not bool(flags.all()):
                    self.optimizer.zero_grad(set_to_none=True)
                    self.skipped += 1
                    return None
                loss = parts.loss if len(inputs) == 1 else parts.loss * weight
                self.scaler.scale(loss).backward()
            parts_seen.append(parts)
            flags_seen.append(flags)
        stepped, norm = optimizer_step(self.parameters, self.optimizer, self.scaler, settings)
        if not stepped:
            self.skipped += 1
            return None
        flags = flags_seen[0] if len(flags_seen) == 1 else torch.stack(flags_seen).all(0)
        if norm is not None and not self.scaler.is_enabled():
            flags, names = torch.cat([flags, norm.isfinite().reshape(1)]), [*names, "gradient"]
        self.check_pending()
        self.pending = (flags, names, epoch, position)
        for parts, (x, _) in zip(parts_seen, inputs, strict=True):
            self.sums.add(parts, x.shape[0])
        return _weighted(parts_seen, weights)

    def _inputs(self, batch: Any, sharded: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = _batch(batch)
        return _shard_images(images, self.settings, sharded), _shard(labels, self.settings, sharded)

    _sharded = False
    """Whether the batches are already this process's shard (set by `for_batches`)."""

    def for_batches(self, batches: Iterable[Any]) -> TrainSteps:
        """Take batches of ``batches``' kind (their ``sharded`` flag); return ``self``."""
        self._sharded = is_sharded(batches)
        return self

    def check_pending(self) -> None:
        """Raise `NonFiniteLossError` if the last step not yet checked was not finite."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            _check_finite(*pending)

    def interval(self) -> EpochResult:
        """Per-example means of each term over the steps since the previous call (one host
        sync, all-reduced over processes); the sums start again."""
        self.check_pending()
        metrics, examples, counts = self.sums.reduce(self.settings)
        seconds = time.perf_counter() - self.started
        result = EpochResult(metrics, examples, seconds, self.skipped, counts, self.steps)
        self.sums, self.skipped, self.steps = _Sums(self.settings.device), 0, 0
        self.start_clock()
        return result

    def start_clock(self) -> None:
        """Time the next interval from now (after an evaluation, say)."""
        self.started = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        """The sums since the last `interval` (what a checkpoint between two reads keeps)."""
        self.check_pending()
        return {
            "totals": dict(self.sums.sums.totals), "examples": self.sums.sums.examples,
            "counts": self.sums.counts, "skipped": self.skipped, "steps": self.steps,
        }  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take up the sums `state_dict` saved."""
        device = self.settings.device
        sums = self.sums.sums
        sums.totals = {k: v.to(device, sums.dtype) for k, v in state["totals"].items()}
        sums.examples = int(state["examples"])
        counts = state["counts"]
        self.sums.counts = None if counts is None else counts.to(device, sums.dtype)
        self.skipped, self.steps = int(state["skipped"]), int(state["steps"])


@validate_args(False)  # once per epoch, never per step: the loop checks each term itself
def train_epoch(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Any],
    settings: StepSettings,
    *,
    epoch: int,
    first_step: int = 0,
    scaler: torch.amp.GradScaler | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool | None = None,
) -> EpochResult:
    """Train for one pass over ``batches``; return per-example means of each logged term.

    ``module`` is a `LossModule` (possibly inside DDP or ``torch.compile``); the global
    step passed to ``model.loss`` is ``first_step`` plus the steps of this epoch. Each
    step is a `TrainSteps.step` (see there for the finiteness checks and host syncs).
    """
    module.train()
    steps = TrainSteps(module, optimizer, settings, scaler=scaler, generator=generator)
    steps.for_batches(batches)
    bar = progress(
        batches, total=_length(batches), description=f"epoch {epoch}", enabled=show_progress
    )
    for step, batch in enumerate(bar, start=1):
        parts = steps.step([batch], step=first_step + step, epoch=epoch, position=step)
        if parts is not None and step % 20 == 0 and getattr(bar, "shown", True):
            rate = steps.sums.examples / max(time.perf_counter() - steps.started, 1e-9)
            bar.set_postfix_str(f"loss {parts.loss.item():.4g}, {rate:,.0f} img/s")
    bar.close()
    return steps.interval()


@torch.no_grad()
@validate_args(False)
def evaluate_epoch(
    module: nn.Module,
    batches: Iterable[Any],
    settings: StepSettings,
    *,
    generator: torch.Generator | None = None,
) -> EpochResult:
    """Per-example means of each logged term over ``batches``, in eval mode, no gradients."""
    was_training = module.training
    module.eval()
    sums, sharded = _Sums(settings.device), is_sharded(batches)
    start = time.perf_counter()
    for batch in batches:
        images, labels = _batch(batch)
        x, labels = _shard_images(images, settings, sharded), _shard(labels, settings, sharded)
        with autocast(settings.device, settings.precision):
            sums.add(loss_parts(module(x, labels, None, generator)), x.shape[0])
    module.train(was_training)
    metrics, examples, counts = sums.reduce(settings)
    return EpochResult(metrics, examples, time.perf_counter() - start, 0, counts)


def _length(batches: Iterable[Any]) -> int | None:
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        return None
