"""The reference trainer: `fit` for any model that follows the protocol, `train` for presets.

Needs the ``train`` extra for images (Pillow) and progress bars (tqdm); the ``tensorboard``
and ``wandb`` extras for those trackers.
"""

from genlatent.train.checkpoint import CheckpointError, load_checkpoint
from genlatent.train.config import ObjectiveOptions, TrainConfig, TrainerSettings
from genlatent.train.ema import WeightEMA
from genlatent.train.fit import RunSummary, fit
from genlatent.train.images import image_grid, save_image_grid
from genlatent.train.loop import NonFiniteLossError
from genlatent.train.prior import (
    encode_codes,
    evaluate_prior,
    fit_prior,
    load_prior,
    prior_source,
)
from genlatent.train.rundir import RunDirectory, RunDirectoryError
from genlatent.train.runner import train
from genlatent.train.runs import LoadedRun, evaluate_run, load_run
from genlatent.train.sampling import sample_run
from genlatent.train.schedule import LRSchedule
from genlatent.train.trackers import TensorBoardTracker, Tracker, WandbTracker

__all__ = [
    "CheckpointError",
    "LRSchedule",
    "LoadedRun",
    "NonFiniteLossError",
    "ObjectiveOptions",
    "RunDirectory",
    "RunDirectoryError",
    "RunSummary",
    "TensorBoardTracker",
    "Tracker",
    "TrainConfig",
    "TrainerSettings",
    "WandbTracker",
    "WeightEMA",
    "encode_codes",
    "evaluate_prior",
    "evaluate_run",
    "fit",
    "fit_prior",
    "image_grid",
    "load_checkpoint",
    "load_prior",
    "load_run",
    "prior_source",
    "sample_run",
    "save_image_grid",
    "train",
]
