"""`train`: run a reference experiment (or a ``--model`` spec) from a `TrainConfig`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch

from genlatent.data.dataset import ImageDataset
from genlatent.train.build import build_model, load_training_sets
from genlatent.train.config import TrainConfig
from genlatent.train.fit import RunData, RunSummary, run_training
from genlatent.train.resume import prepare_run
from genlatent.train.rundir import RunDirectory
from genlatent.train.streamed import StreamedData

__all__ = ["train"]


def train(
    config: TrainConfig | None = None,
    run_dir: str | os.PathLike[str] = "runs/latest",
    *,
    resume: bool = False,
    overwrite: bool = False,
    given: Mapping[str, Any] | None = None,
    datasets: tuple[ImageDataset, ImageDataset] | None = None,
    show_progress: bool | None = None,
    log: Callable[[str], None] = print,
    flag: Callable[[str], str] = str,
) -> RunSummary:
    """Build the model and data ``config`` names and train it with `fit`'s trainer.

    With ``resume=True`` the config is read from ``run_dir`` and training continues from the
    last good checkpoint, so the result equals an uninterrupted run on CPU; the values of
    ``config`` (or only those in ``given``) must equal the stored ones, except ``epochs``,
    ``data_dir``, ``download`` and ``device``, which may change (see `prepare_run`). A
    ``run_dir`` whose run never wrote a checkpoint is started again; one with checkpoints
    is replaced only with ``overwrite``. Under ``torchrun`` it trains with
    DistributedDataParallel.

    Args:
        config: the run's settings; required unless resuming.
        run_dir: the run directory (see `RunDirectory`).
        resume: continue the run stored in ``run_dir``.
        overwrite: replace a run with checkpoints in ``run_dir``.
        given: on resume, the values given explicitly (the command line's flags).
        datasets: ``(train, test)`` to use instead of loading ``config.dataset``; the run
            records ``dataset="custom"``, and resuming it needs them again.
        show_progress: progress bars; ``None`` shows them on a terminal.
        log: where the one-line epoch summaries go.
    """
    if config is not None:  # what the run really trained on, wherever it is read from
        config = config.with_absolute_specs()
        if datasets is not None:
            config = config.replace(dataset="custom")
    config, fresh = prepare_run(
        RunDirectory(run_dir), config, given, resume=resume, overwrite=overwrite, flag=flag,
        log=log,
    )  # fmt: skip
    train_set, test_set = datasets if datasets is not None else load_training_sets(config)
    torch.manual_seed(config.seed)  # the weights are drawn from the run's seed
    data: RunData | StreamedData
    if isinstance(train_set, ImageDataset):
        data = RunData(train_set.images, train_set.labels, test_set.images, test_set.labels)
    else:  # a folder of images: read as the steps need them
        data = StreamedData.from_user(train_set, test_set)
    model = build_model(
        config, data.example_shape, data.num_classes,
        source_dir=RunDirectory(run_dir).source_dir, log=log,
    )  # fmt: skip
    _warn_about_restarts(config, len(train_set), log)
    return run_training(
        model, data, config, run_dir, fresh=fresh, show_progress=show_progress, log=log
    )


def _warn_about_restarts(config: TrainConfig, examples: int, log: Callable[[str], None]) -> None:
    """Say when ``restart_dead_codes`` exceeds the run's training steps: it could never fire."""
    restart = config.architecture.get("restart_dead_codes")
    if restart is None:
        return
    per_epoch = -(-examples // cast(int, config.batch_size))
    bounds = [] if config.epochs is None else [per_epoch * config.epochs]
    steps = min([*bounds, *([] if config.max_steps is None else [config.max_steps])])
    if restart > steps:
        log(
            f"warning: --restart-dead-codes {restart} exceeds the run's "
            f"{steps} training steps ({per_epoch} per epoch), so no code will ever be "
            "restarted; choose a value below the steps per epoch"
        )
