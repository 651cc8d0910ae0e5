"""Reference trainers: config, loop, checkpoints, run directories and pictures.

Needs the ``train`` extra for images (Pillow) and progress bars (tqdm).
"""

from genlatent.train.checkpoint import CheckpointError, atomic_save, load_checkpoint
from genlatent.train.config import TrainConfig
from genlatent.train.images import image_grid, save_image_grid
from genlatent.train.loop import EpochResult, NonFiniteLossError, evaluate, train_epoch
from genlatent.train.objectives import StepLoss, vae_objective, vqvae_objective
from genlatent.train.rundir import RunDirectory, RunDirectoryError
from genlatent.train.runner import RunSummary, train

__all__ = [
    "CheckpointError",
    "EpochResult",
    "NonFiniteLossError",
    "RunDirectory",
    "RunDirectoryError",
    "RunSummary",
    "StepLoss",
    "TrainConfig",
    "atomic_save",
    "evaluate",
    "image_grid",
    "load_checkpoint",
    "save_image_grid",
    "train",
    "train_epoch",
    "vae_objective",
    "vqvae_objective",
]
