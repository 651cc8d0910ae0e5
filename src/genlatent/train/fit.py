"""`fit`: train any model that follows the model protocol, with a run directory."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from genlatent._checkpoint import atomic_save, load_latest_checkpoint
from genlatent._protocols import LossParts, loss_unit
from genlatent._rng import restore_rng_states, rng_states
from genlatent._validation import validate_args
from genlatent.data.batching import TensorBatches, iter_from
from genlatent.data.binarize import TEST_SEED, DynamicBinarization, binarize_once
from genlatent.data.collect import as_tensors
from genlatent.metrics.stats import code_usage
from genlatent.pretrained import module_config
from genlatent.train.build import resolve_device
from genlatent.train.config import OBJECTIVE_OPTIONS, TrainConfig
from genlatent.train.data_init import init_feature_maps, init_from_data
from genlatent.train.datacheck import check_examples_finite, check_model_takes
from genlatent.train.distributed import ProcessGroup, leave_process_group, setup_distributed
from genlatent.train.ema import WeightEMA
from genlatent.train.loop import (
    EpochResult,
    LossModule,
    NonFiniteLossError,
    StepSettings,
    TrainSteps,
    evaluate_epoch,
)
from genlatent.train.optimizers import (
    build_optimizers,
    load_optimizer_state,
    optimizer_state,
    set_learning_rates,
)
from genlatent.train.pictures import write_pictures
from genlatent.train.progress import progress
from genlatent.train.resume import prepare_run
from genlatent.train.rundir import RunDirectory
from genlatent.train.schedule import LRSchedule
from genlatent.train.streamed import StreamedData
from genlatent.train.trackers import RunTrackers, Tracker, split_trackers

__all__ = ["RunData", "RunSummary", "fit"]


@dataclass(frozen=True)
class RunSummary:
    """Where a run left its files and how it ended."""

    run_dir: Path
    """The run directory."""
    epochs: int
    """Epochs completed, counting those of a resumed run."""
    last_metrics: dict[str, Any]
    """The last line of ``metrics.jsonl``."""
    model: nn.Module
    """The trained model, with the last step's weights."""
    steps: int = 0
    """Optimizer steps taken (the global step), counting those of a resumed run."""


@dataclass(frozen=True)
class RunData:
    """The training and test examples of a run, in memory: images $(N, *)$ and labels $(N,)$."""

    train_images: torch.Tensor
    train_labels: torch.Tensor | None
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @classmethod
    def from_user(cls, train_data: object, test_data: object = None) -> RunData:
        """Gather ``train_data`` and ``test_data`` (see `as_tensors`) and check they agree."""
        train_images, train_labels = as_tensors(train_data, name="train_data")
        if test_data is None:
            return cls(train_images, train_labels)
        test_images, test_labels = as_tensors(test_data, name="test_data")
        if test_images.shape[1:] != train_images.shape[1:]:
            raise ValueError(
                f"test_data examples must have the shape of train_data's "
                f"{tuple(train_images.shape[1:])}, got {tuple(test_images.shape[1:])}"
            )
        return cls(train_images, train_labels, test_images, test_labels)

    def binarized(self, seed: int = TEST_SEED) -> RunData:
        """The same data with the test images binarized once (`binarize`, seeded ``seed``).

        The training images stay grey: the trainer draws them afresh at every step.
        """
        if self.test_images is None:
            return self
        return dataclasses.replace(self, test_images=binarize_once(self.test_images, seed=seed))

    @property
    def example_shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. ``(1, 28, 28)``."""
        return tuple(int(n) for n in self.train_images.shape[1:])

    @property
    def num_classes(self) -> int | None:
        """One more than the largest training label; ``None`` without labels."""
        if self.train_labels is None or self.train_labels.numel() == 0:
            return None
        return int(self.train_labels.max()) + 1

    @property
    def shown_images(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The examples the pictures show: the test set's, else the training set's."""
        if self.test_images is not None:
            return self.test_images, self.test_labels
        return self.train_images, self.train_labels


def fit(
    model: nn.Module,
    train_data: object,
    test_data: object = None,
    *,
    run_dir: str | os.PathLike[str],
    epochs: int | None = None,
    batch_size: int,
    lr: float,
    max_steps: int | None = None,
    eval_every: int | None = None,
    save_every: int | None = None,
    log_every: int = 50,
    lr_schedule: str = "constant",
    lr_warmup_steps: int = 0,
    grad_accumulation: int = 1,
    ema_decay: float | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "fp32",
    grad_clip: float | None = None,
    skip_nonfinite: bool = False,
    compile: bool = False,
    loss_options: Mapping[str, Any] | None = None,
    binarize: bool = False,
    num_workers: int = 0,
    trackers: Sequence[str | Tracker] = (),
    resume: bool = False,
    overwrite: bool = False,
    show_progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Train any model that follows the model protocol and leave everything in ``run_dir``.

    Each step minimises ``model.loss`` with Adam on a mini-batch of ``train_data``
    (shuffled per epoch); the run ends after ``epochs`` passes or ``max_steps`` steps,
    whichever comes first (give either or both). Every ``log_every`` steps one line of
    ``steps.jsonl`` records the step, its epoch, its learning rate and its loss terms. At
    each evaluation (each epoch's end, or every ``eval_every`` steps, and at the run's
    end) it evaluates ``test_data`` (if given) in eval mode, appends one line to
    ``metrics.jsonl`` (``epoch``, ``step``, the training terms' means since the previous
    evaluation, the test terms, code usage if reported), writes ``checkpoints/last.pt``
    atomically (the previous one kept as ``last.prev.pt``) and ``best.pt`` when the test
    loss improves (the training loss without test data; at every evaluation for a model
    whose ``best_by_test_loss`` is ``False``, such as `Tokenizer`), and draws
    ``reconstructions.png`` and ``samples.png`` where the model can make them
    (``reconstruct``, ``sample``; one row per class when ``sample`` takes ``labels``);
    ``save_every`` writes ``last.pt`` between evaluations too.
    Before a new run's first step, a model with ``init_output_bias(mean)`` receives the
    training data's mean example (`init_from_data`; `VAE` starts its decoder's output bias
    from it, see its ``output_bias_init``); a resumed run does not.

    ``resume=True`` continues the run in ``run_dir`` exactly, from any step (a checkpoint
    in the middle of an epoch holds how far the epoch got; the batches before are skipped
    without being read where the data allows): pass the same model constructor's fresh
    output and the same data; only ``epochs``, ``max_steps`` (either may grow, which
    stretches a cosine schedule to the new end), ``device``, ``num_workers`` and
    ``trackers`` may change. A ``run_dir``
    whose run never wrote a checkpoint is started again; one with
    checkpoints is replaced only with ``overwrite=True``. Under
    ``torchrun`` it trains with DistributedDataParallel (gloo on CPU, NCCL on GPUs), each
    process on its share of every batch; rank 0 writes the run directory and tells the
    trackers.

    Args:
        model: an ``nn.Module`` with ``loss(x)`` (see `genlatent.Model`); one that
            declares ``optimizer_groups()`` (`genlatent.MultiOptimizerModel`) gets one Adam
            per group, each group stepped in turn on every batch from its start step.
        train_data: held in memory (the fast path): an `ImageDataset`, an images tensor or
            an ``(images, labels)`` pair of tensors; or streamed, read item by item and
            never stacked (`StreamBatches`): any map-style ``Dataset`` (its order drawn per
            epoch from ``seed`` and the epoch, so resume continues it), any
            ``IterableDataset``, or a ``DataLoader`` you built (used as it is; under
            ``torchrun`` give it a ``DistributedSampler``). Items are images or
            ``(image, label)`` pairs; uint8 images are scaled to $[0, 1]$.
        test_data: the same kinds, or ``None``.
        run_dir: the run directory (see `RunDirectory`).
        epochs: passes over the data; optional when ``max_steps`` is given.
        batch_size: examples per step.
        lr: Adam's learning rate (the peak of a schedule).
        max_steps: optimizer steps to train for (the global step, over epochs).
        eval_every: evaluate (and checkpoint) every this many steps and at the run's end,
            instead of at each epoch's end.
        save_every: also write ``last.pt`` every this many steps.
        log_every: write a line of ``steps.jsonl`` every this many steps (each costs one
            host synchronisation; the steps between cost none).
        lr_schedule: ``"constant"`` or ``"cosine"`` (to 0 at the run's last step:
            ``max_steps``, or ``epochs`` times the steps per epoch), after a linear warm-up
            of ``lr_warmup_steps`` (see `LRSchedule`).
        lr_warmup_steps: steps of linear learning-rate warm-up from 0 (the KL warm-up is
            ``loss_options={"warmup_steps": ...}``).
        grad_accumulation: batches of ``batch_size`` per optimizer step, each loss
            weighted by its share of the step's examples (the last step of an epoch may
            take fewer); a step is ``grad_accumulation`` times ``batch_size`` examples.
        ema_decay: keep an exponential moving average of the weights with this decay,
            updated after each step (`WeightEMA`); evaluation, pictures, ``best.pt``,
            ``last.pt``'s ``model`` (what `load_run` loads) and the returned model hold
            it; ``last.pt`` keeps the trained weights too, for resume.
        seed: seeds the batch order, the trainer's noise and the global RNG.
        device: ``"auto"`` (cuda, then mps, then cpu) or a torch device string.
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"fp16"`` (autocast, scaler).
        grad_clip: clip the gradient norm to this value.
        skip_nonfinite: skip (and count) non-finite steps instead of stopping.
        compile: compile the loss computation with ``torch.compile``.
        loss_options: options of the training objective passed to ``model.loss`` at every
            training step, never in evaluation, which scores the model's default loss (for
            `VAE`, the true negative ELBO): ``beta``, ``free_bits``, ``warmup_steps``,
            ``capacity`` and ``gamma`` (see `vae_loss`) or ``iwae_samples``. The model's
            ``loss`` must take each; they are recorded in the run's config.
        binarize: dynamic binarization (Burda et al. 2016): every training image is
            replaced by a fresh Bernoulli draw at every step (from the trainer's saved
            noise generator, so resume stays exact), and the test set by one draw with
            seed 0, the same for every run. The images must lie in $[0, 1]$ (or be uint8),
            held in memory.
        num_workers: worker processes that read streamed data (0: this process), with
            pinned memory on CUDA; the in-memory path needs none.
        trackers: where else the metrics, pictures and config go: ``"tensorboard"``,
            ``"wandb"`` (`TensorBoardTracker`, `WandbTracker`; their names are recorded in
            the run's config as ``log``) and objects of your own that follow `Tracker`.
            ``metrics.jsonl`` is written all the same.
        resume: continue the run stored in ``run_dir``.
        overwrite: replace a run with checkpoints in ``run_dir``.
        show_progress: progress bars; ``None`` shows them on a terminal.
        log: where the one-line epoch summaries go.

    Returns:
        `RunSummary`.

    Raises:
        TypeError: if ``model`` has no ``loss`` method or the data is of no known kind.
        ValueError: on a bad setting, or data the model cannot take.
        RunDirectoryError: if ``run_dir`` holds another run (or none, with ``resume``).
        NonFiniteLossError: on a NaN or infinite loss, naming the epoch, step and term.

    Example:
        >>> import tempfile, torch
        >>> from genlatent import VAE, MLPDecoder, MLPEncoder
        >>> model = VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=(1, 4, 4)))
        >>> images = torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8)
        >>> with tempfile.TemporaryDirectory() as run_dir:
        ...     summary = fit(model, images, run_dir=run_dir, epochs=2, batch_size=16,
        ...                   lr=1e-3, log=lambda line: None)
        >>> summary.epochs, sorted(summary.last_metrics)[:3]
        (2, ['epoch', 'epoch_seconds', 'images_per_second'])
    """
    if epochs is None and max_steps is None:
        raise ValueError(
            "fit needs epochs or max_steps (or both: the run ends at whichever comes first), "
            "got neither"
        )
    names, own = split_trackers(trackers)
    config = TrainConfig(
        model="custom", dataset="custom", epochs=epochs, batch_size=batch_size, lr=lr,
        max_steps=max_steps, eval_every=eval_every, save_every=save_every,
        log_every=log_every, lr_schedule=lr_schedule, lr_warmup_steps=lr_warmup_steps,
        grad_accumulation=grad_accumulation, ema_decay=ema_decay, seed=seed, device=device,
        precision=precision, grad_clip=grad_clip,
        skip_nonfinite=skip_nonfinite, compile=compile, binarize=binarize,
        workers=num_workers, log=names, **_objective_fields(loss_options),
    )  # fmt: skip
    data = _run_data(train_data, test_data, binarize=binarize)
    LossModule(model, config.loss_options())  # check the protocol before anything is written
    config, fresh = prepare_run(
        RunDirectory(run_dir), config, resume=resume, overwrite=overwrite, log=log
    )
    return run_training(
        model, data, config, run_dir, fresh=fresh, trackers=own, show_progress=show_progress,
        log=log,
    )  # fmt: skip


def _run_data(train_data: object, test_data: object, *, binarize: bool) -> RunData | StreamedData:
    """The in-memory fast path for tensors and `ImageDataset`s; streaming for the rest."""
    if not StreamedData.takes(train_data, test_data):
        return RunData.from_user(train_data, test_data)
    if binarize:
        raise ValueError(
            "binarize draws from data held in memory (an ImageDataset, an images tensor or "
            "an (images, labels) pair); for streamed data, binarize in the dataset's items"
        )
    return StreamedData.from_user(train_data, test_data)


def _objective_fields(loss_options: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(loss_options or {})
    unknown = sorted(set(options) - set(OBJECTIVE_OPTIONS))
    if unknown:
        raise ValueError(
            f"loss_options may hold {sorted(OBJECTIVE_OPTIONS)}, got {unknown}; for other "
            "options of your model's loss, give them defaults in its signature"
        )
    return options


def run_training(
    model: nn.Module,
    data: RunData | StreamedData,
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    fresh: bool = True,
    trackers: Sequence[Tracker] = (),
    show_progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """The trainer behind `fit` and `train`: ``config`` holds every setting of the run.

    ``fresh`` starts the run (writing ``config.json``); otherwise it continues from the
    last good checkpoint (`prepare_run` decides which). ``trackers`` are told too, with the
    built-in ones ``config.log`` names.
    """
    tracking = RunTrackers(config.log, trackers)  # a missing package fails before any write
    joined = torch.distributed.is_available() and torch.distributed.is_initialized()
    try:
        run = _Run(model, data, config, RunDirectory(run_dir), fresh, log, tracking)
        summary = run.train(show_progress)
    except BaseException as error:
        if not joined:  # leave no process group behind that this call created (torchrun)
            leave_process_group(error, together=isinstance(error, NonFiniteLossError))
        raise
    if not joined:
        leave_process_group()
    return summary


class _Run:
    """One training run: its state, its run directory, and the epoch loop."""

    def __init__(
        self,
        model: nn.Module,
        data: RunData | StreamedData,
        config: TrainConfig,
        run: RunDirectory,
        fresh: bool,
        log: Callable[[str], None],
        trackers: RunTrackers,
    ) -> None:
        self.loss_module = LossModule(model, config.loss_options())
        self.model, self.data, self.run, self.log, self.config = model, data, run, log, config
        if config.binarize and isinstance(data, RunData):  # one fixed draw of the test set
            self.data = data.binarized()
        device = resolve_device(self.config.device)
        self.group: ProcessGroup = setup_distributed(device.type)
        self.trackers = trackers if self.group.is_main else RunTrackers(None)  # rank 0 tracks
        if device.type == "cuda" and self.group.world > 1:
            device = torch.device("cuda", self.group.local_rank)
        self.settings = StepSettings(
            device, self.config.precision, self.config.grad_clip, self.config.skip_nonfinite,
            self.group.rank, self.group.world,
        )  # fmt: skip
        torch.manual_seed(self.config.seed)
        model.to(device)
        self._check_data(device)
        # one Adam and scaler, or one per parameter group the model declares
        self.optimizers = build_optimizers(
            model, cast(float, self.config.lr), device, self.config.precision
        )
        self.order = torch.Generator().manual_seed(self.config.seed)
        self.noise = torch.Generator(device=device).manual_seed(
            self.config.seed + 1 + self.group.rank
        )
        self.train_batches, self.test_batches = self._batches()
        self.per_epoch = _length(self.train_batches)  # None: an iterable without a length
        accumulation = self.config.grad_accumulation
        self.steps_per_epoch = (
            None if self.per_epoch is None else -(-self.per_epoch // accumulation)
        )
        self.schedule = self._schedule()  # a bad schedule is refused before anything is written
        self.epoch, self.best = 0, float("inf")  # epochs completed, the best evaluated loss
        self.position = 0  # batches of the epoch in progress already trained
        self.epoch_order = self.order.get_state()  # the order's state at that epoch's start
        self.steps = 0  # the global step: optimizer steps taken (skipped ones included)
        self.evaluated_step: int | None = 0  # the step of the last evaluation
        self.interval: dict[str, Any] | None = None  # the sums since it, from a checkpoint
        averaged = None  # the weight average a checkpoint holds
        if not fresh:
            averaged = self._restore()
        else:  # a new run starts from its data where the model asks (same on every rank)
            init_from_data(model, self.data.train_images)
            main_log = self.log if self.group.is_main else None
            init_feature_maps(
                model, self.data.train_images, self.data.train_labels,
                in_memory=isinstance(self.data, RunData), log=main_log,
            )  # fmt: skip
            if self.group.is_main:  # prepare_run allowed it: replace a failed start or overwrite
                run.clear()
                run.create(self.config, module_config(model))  # the model as constructed
        self.ema = None if config.ema_decay is None else WeightEMA(model, config.ema_decay)
        if self.ema is not None and averaged is not None:
            self.ema.load_state_dict(averaged)

    def _check_data(self, device: torch.device) -> None:
        """Once, before anything is written or trained: finite data the model can take."""
        check_examples_finite("train_data", self.data.train_images)
        check_examples_finite("test_data", self.data.test_images)
        if self.data.train_images.shape[0] > 0:
            check_model_takes(
                self.loss_module, self.data.train_images, self.data.train_labels, device
            )

    def _batches(self) -> tuple[Iterable[Any], Iterable[Any] | None]:
        device, batch_size = self.settings.device, cast(int, self.config.batch_size)
        if isinstance(self.data, StreamedData):
            return self.data.batches(
                batch_size=batch_size, seed=self.config.seed, device=device,
                workers=self.config.workers, rank=self.group.rank, world=self.group.world,
            )  # fmt: skip
        train = TensorBatches(
            self.data.train_images, self.data.train_labels, batch_size=batch_size,
            shuffle=True, generator=self.order, device=device,
        )  # fmt: skip
        batches: Iterable[Any] = train
        if self.config.binarize:  # a fresh draw at every step, from the saved noise generator
            batches = DynamicBinarization(train, generator=self.noise)
        if self.data.test_images is None:
            return batches, None
        test = TensorBatches(
            self.data.test_images, self.data.test_labels, batch_size=max(batch_size, 500),
            device=device,
        )  # fmt: skip
        return batches, test

    def _schedule(self) -> LRSchedule:
        """The learning rate of each step; a cosine ends at the run's last step: ``max_steps``
        or ``epochs`` times the steps per epoch, whichever comes first."""
        bounds = [] if self.config.max_steps is None else [self.config.max_steps]
        if self.config.epochs is not None and self.steps_per_epoch is not None:
            bounds.append(self.config.epochs * self.steps_per_epoch)
        return LRSchedule(
            cast(float, self.config.lr), self.config.lr_schedule,
            warmup_steps=self.config.lr_warmup_steps, total_steps=min(bounds, default=None),
        )  # fmt: skip

    def _restore(self) -> dict[str, Any] | None:
        """Take up the last good checkpoint; the weight average it holds, if any."""
        device = self.settings.device
        state, source = load_latest_checkpoint(self.run.last_checkpoint, map_location=device)
        # with a weight average, "model" is the average and "trained_model" the weights
        self.model.load_state_dict(state.get("trained_model", state["model"]))
        load_optimizer_state(self.optimizers, state)
        self.order.set_state(state["order_rng"])
        self.noise.set_state(state["noise_rng"].cpu())
        # the CPU's global RNG and each accelerator's (dead-code restarts on a GPU draw there)
        restore_rng_states({"cpu": state["torch_rng"], **state.get("device_rng", {})})
        self.epoch, self.best = int(state["epoch"]), float(state["best_loss"])
        # where in the epoch the checkpoint stands, and the batch order's state at its start
        self.position = int(state.get("position", 0))
        if self.position:
            self.order.set_state(state["epoch_order_rng"])
        # a checkpoint of an older version holds whole epochs of in-memory data
        self.steps = int(state.get("steps", self.epoch * cast(int, self.steps_per_epoch)))
        self.evaluated_step = state.get("evaluated_step")  # None: at an evaluation, as before
        self.interval = state.get("interval")
        self._check_bounds()
        self.log(f"resuming {self.run.path} from {source.name} at {self._where()}")
        last = self.run.last_checkpoint
        if source != last and self.group.is_main and last.exists():
            # out of the rotation, kept for inspection: the next save must not move the
            # unreadable file over the good previous checkpoint
            kept = last.with_name(last.name + ".corrupt")
            os.replace(last, kept)
            self.log(f"{last} could not be read; kept as {kept.name}")
        return cast(dict[str, Any], state["model"]) if "trained_model" in state else None

    def _check_bounds(self) -> None:
        """A resumed run may grow ``epochs`` and ``max_steps``, never shrink them."""
        epochs, max_steps = self.config.epochs, self.config.max_steps
        if epochs is not None and epochs < self.epoch:
            raise ValueError(
                f"--epochs {epochs} is fewer than the {self.epoch} epochs the "
                f"run has: give more to train on, or as many to change nothing"
            )
        if max_steps is not None and max_steps < self.steps:
            raise ValueError(
                f"--max-steps {max_steps} is fewer than the {self.steps} steps the run has: "
                "give more to train on, or as many to change nothing"
            )

    def _where(self) -> str:
        if self.position == 0:
            return f"epoch {self.epoch}"
        return f"step {self.steps} (batch {self.position} of epoch {self.epoch + 1})"

    def _forget_after_checkpoint(self) -> None:
        """On resume: drop the lines the checkpoint does not hold; record what changed."""
        if not self.group.is_main:
            return
        self.run.truncate_metrics(self.epoch, self.steps)
        if self.run.read_config() != self.config:  # what resume changed, recorded
            self.run.write_config(self.config)

    def _trained_module(self) -> nn.Module:
        module: nn.Module = self.loss_module
        if self.group.world > 1:
            # a step of one parameter group leaves the others' without gradients
            unused = len(self.optimizers) > 1
            module = nn.parallel.DistributedDataParallel(module, find_unused_parameters=unused)
        if self.config.compile:
            module = cast(nn.Module, torch.compile(module))
        return module

    def _finished(self) -> bool:
        """Whether the run has its ``max_steps`` or its ``epochs``, whichever comes first."""
        max_steps, epochs = self.config.max_steps, self.config.epochs
        if max_steps is not None and self.steps >= max_steps:
            return True
        return epochs is not None and self.epoch >= epochs

    def train(self, show_progress: bool | None) -> RunSummary:
        if self.evaluated_step is None:
            self.evaluated_step = self.steps
        self._forget_after_checkpoint()
        if self._finished():
            bound = (
                f"{self.steps} of {self.config.max_steps} steps"
                if self.config.max_steps is not None and self.steps >= self.config.max_steps
                else f"{self.epoch} of {self.config.epochs} epochs"
            )
            self.log(f"nothing left to do: the run has {bound}")
        self.trackers.start(self.run, self.steps)
        try:
            with validate_args(False):  # once per run, never per step: the loop checks each term
                record = self._train_steps(show_progress)
        finally:
            self.trackers.finish()
        epochs, _ = self._completed()
        if self.ema is not None:  # the run's result is the average, as load_run gives it
            self.model.load_state_dict(self.ema.state_dict())
        return RunSummary(self.run.path, epochs, record, self.model, self.steps)

    def _train_steps(self, show_progress: bool | None) -> dict[str, Any]:
        """Train the steps the run has left, evaluating and saving on the way; the last
        evaluation's record."""
        self.module = self._trained_module()
        self.trainer = TrainSteps(
            self.module,
            self.optimizers[0].optimizer,
            self.settings,
            generator=self.noise,
            optimizers=self.optimizers,
        ).for_batches(self.train_batches)
        if self.interval is not None:  # the sums since the last evaluation, kept
            self.trainer.load_state_dict(self.interval)
        self.started = time.perf_counter()
        record: dict[str, Any] = {}
        eval_every, save_every = self.config.eval_every, self.config.save_every
        while not self._finished():
            epoch = self.epoch + 1
            _set_epoch(self.train_batches, epoch)
            if self.position == 0:  # the order's state before this epoch's permutation
                self.epoch_order = self.order.get_state()
            taken = self.position
            total = None if self.per_epoch is None else self.per_epoch - self.position
            bar = progress(
                iter_from(self.train_batches, self.position), total=total,
                description=f"epoch {epoch}", enabled=show_progress,
            )  # fmt: skip
            for group in _groups(bar, self.config.grad_accumulation):
                self.steps, self.position = self.steps + 1, self.position + len(group)
                lr = self.schedule.lr_at(self.steps)
                set_learning_rates(self.optimizers, lr)
                parts = self.trainer.step(
                    group, step=self.steps, epoch=epoch, position=self.position
                )
                if parts is not None and self.ema is not None:
                    self.ema.update(self.model)
                if self.steps % self.config.log_every == 0:
                    self._log_step(_step_record(self.steps, epoch, lr, parts))
                if parts is not None and self.steps % 20 == 0 and getattr(bar, "shown", True):
                    bar.set_postfix_str(f"loss {parts.loss.item():.4g}")  # a shown bar only
                finished = self._finished()
                if finished or (eval_every is not None and self.steps % eval_every == 0):
                    record = self._evaluate(epoch)
                elif save_every is not None and self.steps % save_every == 0:
                    self._save(epoch, improved=False)
                if finished:
                    break
            else:  # the epoch's end
                if self.position == taken == 0:
                    raise ValueError(
                        f"train_data gave no batch in epoch {epoch}: a run needs at least "
                        "one example per epoch"
                    )
                self.epoch, self.position = epoch, 0
                at_end = eval_every is None or self._finished()
                if at_end and self.evaluated_step != self.steps:
                    record = self._evaluate(epoch)
            bar.close()
        return record

    def _evaluate(self, epoch: int) -> dict[str, Any]:
        """Evaluate at the current step: one ``metrics.jsonl`` line (`_log_evaluation`),
        ``last.pt`` and ``best.pt`` on improvement, the pictures; the line."""
        result = self.trainer.interval()
        _check_state_finite(self.model, epoch)
        test = None
        if self.test_batches is not None:
            with self._averaged():  # evaluation sees the weight average, if one is kept
                test = evaluate_epoch(
                    self.module, self.test_batches, self.settings, generator=self.noise
                )
        wall = time.perf_counter() - self.started
        record = _record(epoch, self.steps, result, test, wall)
        # a surrogate objective (beta, warm-up, free bits) is compared by its true bound
        keys = ("test_elbo_loss", "test_loss", "train_elbo_loss", "train_loss")
        key = next(k for k in keys if k in record)
        # a model whose test loss is not what it trains for (an adversarial game) keeps
        # its last evaluation as the best
        ranked = getattr(self.model, "best_by_test_loss", True)
        improved = record[key] < self.best or not ranked
        self.best = min(self.best, record[key])
        self.evaluated_step = self.steps
        # metrics first: a crash between the two leaves a line for steps that resume
        # drops and trains again, never a checkpoint whose evaluation has no line
        self._log_evaluation(record)
        self._save(epoch, improved=improved, checked=True)
        if self.group.is_main:  # last: a run that has its pictures has its checkpoint
            with self._averaged():
                images, labels = self.data.shown_images
                pictures = write_pictures(
                    self.model, images, labels, self.run, seed=self.config.seed,
                    num_classes=self.data.num_classes,
                )  # fmt: skip
            self.trackers.log_pictures(pictures, self.steps)
        # the summary last: once it is printed, the evaluation's files are all written
        by_steps = self.config.eval_every is not None
        self.log(_summary_line(record, loss_unit(self.model), show_step=by_steps))
        self.trainer.start_clock()
        return record

    @contextlib.contextmanager
    def _averaged(self) -> Iterator[None]:
        """The model holds the weight average inside (the trained weights after)."""
        if self.ema is None:
            yield
            return
        trained = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.ema.state_dict())
        try:
            yield
        finally:
            self.model.load_state_dict(trained)

    def _log_step(self, record: dict[str, Any]) -> None:
        """One logged step: a line of ``steps.jsonl`` (the main process writes it)."""
        if self.group.is_main:
            self.run.append_steps(record)

    def _log_evaluation(self, record: dict[str, Any]) -> None:
        """One evaluation: a line of ``metrics.jsonl`` (the main process writes it)."""
        if self.group.is_main:
            self.run.append_metrics(record)
            self.trackers.log_metrics(record, self.steps)

    def _save(self, epoch: int, *, improved: bool, checked: bool = False) -> None:
        """``last.pt`` (the previous one kept) and, if ``improved``, ``best.pt``; the
        weights are checked for NaN and infinity first unless ``checked`` already."""
        state = self._state()
        if not checked:
            _check_state_finite(self.model, epoch)
        if self.group.is_main:
            atomic_save(state, self.run.last_checkpoint, keep_previous=True)
            if improved:
                atomic_save(state, self.run.best_checkpoint)

    def _completed(self) -> tuple[int, int]:
        """Epochs completed and batches into the next; an epoch whose last batch was the
        run's last step counts as completed."""
        if self.per_epoch is not None and self.position >= self.per_epoch:
            return self.epoch + 1, 0
        return self.epoch, self.position

    def _state(self) -> dict[str, Any]:
        epoch, position = self._completed()
        state = {
            "model": self.model.state_dict() if self.ema is None else self.ema.state_dict(),
            **optimizer_state(self.optimizers),
            "epoch": epoch,
            "position": position,
            "steps": self.steps,
            "evaluated_step": self.evaluated_step,
            "interval": self.trainer.state_dict(),
            "best_loss": self.best,
            "config": self.config.to_dict(),
            "data": {
                "example_shape": list(self.data.example_shape),
                "num_classes": self.data.num_classes,
            },
            "order_rng": self.order.get_state(),
            "noise_rng": self.noise.get_state(),
            "torch_rng": torch.get_rng_state(),
            "device_rng": {k: v for k, v in rng_states().items() if k != "cpu"},
        }
        if position:  # resume draws the epoch's order again and skips what was trained
            state["epoch_order_rng"] = self.epoch_order
        if self.ema is not None:  # "model" is what load_run reads: the average
            state["trained_model"] = self.model.state_dict()
        return state


def _set_epoch(batches: Iterable[Any], epoch: int) -> None:
    """Streamed batches draw each epoch's order from ``(seed, epoch)``: tell them which."""
    set_epoch = getattr(batches, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


def _groups(batches: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive groups of ``size`` batches (the last may be smaller): one step each."""
    items = iter(batches)
    while group := list(itertools.islice(items, size)):
        yield group


def _length(batches: Iterable[Any]) -> int | None:
    """Batches per epoch, or ``None`` for an iterable without a length."""
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        return None


def _step_record(step: int, epoch: int, lr: float, parts: LossParts | None) -> dict[str, Any]:
    """One line of ``steps.jsonl``: the step, its epoch, its learning rate and its terms
    (one host sync: the terms read together); a skipped step says so."""
    record: dict[str, Any] = {"step": step, "epoch": epoch, "lr": lr}
    if parts is None:
        return record | {"skipped": True}
    names = ["loss", *parts.terms]
    values = torch.stack([parts.loss.detach(), *(t.detach() for t in parts.terms.values())])
    return record | dict(zip(names, values.float().tolist(), strict=True))


def _record(
    epoch: int, step: int, result: EpochResult, test: EpochResult | None, wall_seconds: float
) -> dict[str, Any]:
    """One line of ``metrics.jsonl``: the training terms' means since the last evaluation,
    the test terms, code usage and speed."""
    record: dict[str, Any] = {"epoch": epoch, "step": step, "train_examples": result.examples}
    record |= {f"train_{k}": v for k, v in result.metrics.items()}
    if result.code_counts is not None:
        used, perplexity = code_usage(result.code_counts)
        record |= {"train_codes_used": used, "train_usage_perplexity": perplexity}
    if test is not None:
        record |= {f"test_{k}": v for k, v in test.metrics.items()}
    return record | {
        "images_per_second": result.examples / max(result.seconds, 1e-9),
        "epoch_seconds": result.seconds,
        "wall_seconds": wall_seconds,
        "skipped_steps": result.skipped_steps,
    }


def _check_state_finite(model: nn.Module, epoch: int) -> None:
    """Refuse to checkpoint weights or buffers holding NaN or infinity (one sync per epoch)."""
    state = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point()]
    if not state:
        return
    flags = torch.stack([torch.isfinite(t).all() for _, t in state]).tolist()
    bad = [name for (name, _), ok in zip(state, flags, strict=True) if not ok]
    if bad:
        raise NonFiniteLossError(
            f"non-finite model state after epoch {epoch}: {', '.join(bad[:5])} hold NaN or "
            "infinity; no checkpoint was written for this epoch, the previous one is kept"
        )


def _summary_line(
    record: dict[str, Any], unit: str | None = None, *, show_step: bool = False
) -> str:
    """One line per evaluation, each loss in the model's ``unit``; a surrogate objective
    (beta, warm-up, IWAE...) is named apart from the bound it stands for, so train and test
    numbers are never of different kinds."""
    parts = [f"epoch {record['epoch']}" + (f" step {record['step']}" if show_step else "")]
    train, elbo = record["train_loss"], record.get("train_elbo_loss")
    surrogate = elbo is not None and elbo != train
    suffix = f" {unit}" if unit else ""
    if surrogate:
        parts += [f"train objective {train:.4f}{suffix}", f"train elbo {elbo:.4f}{suffix}"]
    else:
        parts.append(f"train {train:.4f}{suffix}")
    if "test_loss" in record:
        test = record["test_loss"]
        parts.append(f"test {'elbo ' if surrogate else ''}{test:.4f}{suffix}")
    if "train_codes_used" in record:
        parts.append(f"codes used {record['train_codes_used']:.1%}")
    parts.append(f"{record['images_per_second']:.0f} img/s")
    return " | ".join(parts)
