"""Runs of test_fit_steps: ``python _steps_worker.py KIND RUN_DIR KILL_AT`` trains the run
and SIGKILLs its own process inside training step KILL_AT, in the middle of an epoch."""

import functools
import os
import signal
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

from genlatent import VAE, MLPDecoder, MLPEncoder, fit
from genlatent.data import Augment, ImageFolder

SHAPE = (1, 4, 4)
MAX_STEPS, EVAL_EVERY, SAVE_EVERY, BATCH, TRAIN = 14, 4, 3, 8, 40  # 5 batches an epoch


class Items(Dataset):
    """A map-style dataset of generated uint8 images with labels (item i from seed i)."""

    def __init__(self, size: int, offset: int = 0) -> None:
        self.size, self.offset = size, offset

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        generator = torch.Generator().manual_seed(self.offset + index)
        return torch.randint(0, 256, SHAPE, dtype=torch.uint8, generator=generator), index % 3


def _model(shape: tuple[int, int, int] = SHAPE) -> VAE:
    torch.manual_seed(0)
    pixels = shape[0] * shape[1] * shape[2]
    return VAE(MLPEncoder(pixels, 8, 2), MLPDecoder(2, 8, pixels, out_shape=shape))


def _folder(root: Path, size: int) -> Path:
    """``size`` grey 10x9 PNGs (item i from seed i) in two class folders, made once."""
    from PIL import Image

    if not root.is_dir():
        for index in range(size):
            generator = torch.Generator().manual_seed(index)
            pixels = torch.randint(0, 256, (9, 10), dtype=torch.uint8, generator=generator)
            folder = root / f"class{index % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.frombytes("L", (10, 9), bytes(pixels.flatten().tolist())).save(
                folder / f"{index:03d}.png"
            )
    return root


def run(kind: str, run_dir: Path, *, resume: bool = False) -> None:
    """The in-memory run with dynamic binarization, the streamed one with two workers and a
    cosine schedule, or the same on an image folder with random crops and flips; all by
    steps, evaluated and saved mid-epoch."""
    common = {
        "batch_size": BATCH, "lr": 1e-2, "max_steps": MAX_STEPS, "eval_every": EVAL_EVERY,
        "save_every": SAVE_EVERY, "log_every": 1, "device": "cpu", "resume": resume,
        "log": lambda line: None, "show_progress": False,
    }  # fmt: skip
    if kind == "memory":
        train = torch.stack([Items(TRAIN)[i][0] for i in range(TRAIN)])
        test = torch.stack([Items(16, 1000)[i][0] for i in range(16)])
        fit(_model(), train, test, run_dir=run_dir, binarize=True, **common)
    elif kind == "folder":  # random crops and flips, drawn per (seed, epoch, item)
        root = _folder(run_dir.parent / "images", TRAIN)
        augment = Augment(flip=True, crop=True, seed=0)
        train = ImageFolder(root, size=8, channels=1, augment=augment)
        test = ImageFolder(root, size=8, channels=1)
        fit(_model((1, 8, 8)), train, test, run_dir=run_dir, num_workers=2,
            lr_schedule="cosine", lr_warmup_steps=3, **common)  # fmt: skip
    else:
        fit(_model(), Items(TRAIN), Items(16, 1000), run_dir=run_dir, num_workers=2,
            lr_schedule="cosine", lr_warmup_steps=3, **common)  # fmt: skip


def _kill_at(step: int) -> None:
    original = VAE.loss

    @functools.wraps(original)  # the trainer reads the keywords loss declares
    def loss(self, x, **kwargs):
        if self.training and kwargs.get("step") == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, x, **kwargs)

    VAE.loss = loss  # type: ignore[method-assign]


if __name__ == "__main__":  # pytest's doctest collection imports this file
    torch.set_num_threads(1)
    _kill_at(int(sys.argv[3]))
    run(sys.argv[1], Path(sys.argv[2]))
