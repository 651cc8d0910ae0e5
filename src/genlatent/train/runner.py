"""`train`: run a reference experiment (or a ``--model`` spec) from a `TrainConfig`."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from genlatent.data.dataset import ImageDataset
from genlatent.train.build import build_model, load_datasets
from genlatent.train.config import TrainConfig
from genlatent.train.fit import RunData, RunSummary, run_training
from genlatent.train.rundir import RunDirectory

__all__ = ["train"]


def train(
    config: TrainConfig | None = None,
    run_dir: str | os.PathLike[str] = "runs/latest",
    *,
    resume: bool = False,
    datasets: tuple[ImageDataset, ImageDataset] | None = None,
    show_progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Build the model and data ``config`` names and train it with `fit`'s trainer.

    With ``resume=True`` the config is read from ``run_dir`` (``config`` may only change
    ``epochs``) and training continues from the last good checkpoint, so the result equals
    an uninterrupted run on CPU. Under ``torchrun`` it trains with DistributedDataParallel.

    Args:
        config: the run's settings; required unless resuming.
        run_dir: the run directory (see `RunDirectory`).
        resume: continue the run stored in ``run_dir``.
        datasets: ``(train, test)`` to use instead of loading ``config.dataset``; the run
            records ``dataset="custom"``, and resuming it needs them again.
        show_progress: progress bars; ``None`` shows them on a terminal.
        log: where the one-line epoch summaries go.
    """
    if resume:
        stored = RunDirectory(run_dir).read_config()
        config = stored if config is None else config
    elif config is None:
        raise ValueError("config is required unless resume=True")
    elif datasets is not None:
        config = config.replace(dataset="custom")  # what the run really trained on
    train_set, test_set = datasets if datasets is not None else load_datasets(config)
    torch.manual_seed(config.seed)  # the weights are drawn from the run's seed
    data = RunData(train_set.images, train_set.labels, test_set.images, test_set.labels)
    model = build_model(config, data.example_shape, data.num_classes)
    return run_training(
        model, data, config, run_dir, resume=resume, show_progress=show_progress, log=log
    )
