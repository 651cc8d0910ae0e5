"""Trackers: where a run's metrics, pictures and config go besides its run directory.

``metrics.jsonl`` stays the record of a run; a tracker receives a copy of each line as it
is written, each picture the run draws and the run's ``config.json``, for the tools people
watch runs in. Two are built in, each an optional extra: `TensorBoardTracker`
(``--log tensorboard``) and `WandbTracker` (``--log wandb``). Any object with the four
methods of `Tracker` is one too (MLflow, a database, a chat message): pass it to
``fit(..., trackers=[...])``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from genlatent._atomic import atomic_write
from genlatent.train.config import TRACKERS, tracker_names
from genlatent.train.rundir import RunDirectory

__all__ = ["RunTrackers", "TensorBoardTracker", "Tracker", "WandbTracker", "split_trackers"]

RUN_ID_FILE = "run-id.txt"
"""The file in ``RUN_DIR/wandb/`` that keeps the W&B run's id, so a resumed run continues it."""


@runtime_checkable
class Tracker(Protocol):
    """What a run tells a tracker; the trainer calls it on the process of rank 0 only.

    - ``start(run_dir, config, step=...)``, once before training: the run directory, the
      content of its ``config.json``, and the global step the run starts from: 0 for a new
      run; on resume, the step of the checkpoint it continues from (points logged after
      it were made by steps that are now trained again: a tracker that can should drop
      them).
    - ``log_metrics(metrics, step)``: each line of ``metrics.jsonl`` (every value a number)
      at the global step, the number of optimizer steps taken so far.
    - ``log_images(name, image, step)``: each picture the run draws (``"reconstructions"``,
      ``"samples"``), as the ``uint8`` grid of shape $(H, W, C)$, $C \\in \\{1, 3\\}$, that
      the run directory's PNG file shows enlarged.
    - ``finish()``, once at the end, also when training stops on an error.

    Example:
        >>> class Printed:
        ...     def start(self, run_dir, config, *, step): print("from step", step)
        ...     def log_metrics(self, metrics, step): print(step, metrics["epoch"])
        ...     def log_images(self, name, image, step): pass
        ...     def finish(self): print("done")
        >>> isinstance(Printed(), Tracker)
        True
    """

    def start(self, run_dir: Path, config: Mapping[str, Any], *, step: int) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_images(self, name: str, image: torch.Tensor, step: int) -> None: ...

    def finish(self) -> None: ...


def _missing(package: str, extra: str, error: ImportError) -> ImportError:
    return ImportError(
        f"the {extra} tracker (--log {extra}) needs the {package} package, which is not "
        f"installed ({error}): pip install 'genlatent[{extra}]'"
    )


class TensorBoardTracker:
    """Writes the run's metrics, pictures and config to ``RUN_DIR/tensorboard/`` (event files
    of `torch.utils.tensorboard`; watch with ``tensorboard --logdir RUN_DIR/tensorboard``).

    Each metric is a scalar under its ``metrics.jsonl`` name, each picture an image under its
    name, the config a text entry ``config``. On resume the writer continues in the same
    folder with ``purge_step`` one after the checkpoint's step, so TensorBoard drops the
    points that a stopped run logged after its last checkpoint and shows each step once.

    Raises:
        ImportError: without the ``tensorboard`` package (``pip install
            'genlatent[tensorboard]'``), when constructed: before anything is written.
    """

    def __init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise _missing("tensorboard", "tensorboard", error) from error
        self._writer_class = SummaryWriter
        self._writer: Any = None

    def start(self, run_dir: Path, config: Mapping[str, Any], *, step: int) -> None:
        folder = RunDirectory(run_dir).tracker_dir("tensorboard")
        purge_step = step + 1 if step > 0 else None  # drop what was logged after the checkpoint
        self._writer = self._writer_class(log_dir=str(folder), purge_step=purge_step)
        text = json.dumps(dict(config), indent=2, sort_keys=True)
        # four spaces: a code block in TensorBoard's markdown
        self._writer.add_text(
            "config", "\n".join("    " + line for line in text.splitlines()), step
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, step)

    def log_images(self, name: str, image: torch.Tensor, step: int) -> None:
        self._writer.add_image(name, image, step, dataformats="HWC")

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbTracker:
    """Sends the run's metrics, pictures and config to Weights & Biases, with its files in
    ``RUN_DIR/wandb/``.

    The W&B run's id is kept in ``RUN_DIR/wandb/run-id.txt``; a resumed genlatent run
    continues the same W&B run (``resume="allow"``), logging at the same global steps.
    W&B ignores a step below the last one it holds: after a stop, the steps trained again
    between the last checkpoint and the stop keep the points that were logged first.

    W&B's own settings apply: ``WANDB_MODE=offline`` (or ``mode="offline"``) works with no
    account and no network, and ``wandb sync RUN_DIR/wandb/offline-run-*`` uploads later.

    Args:
        project: the W&B project.
        name: the run's display name (default: the run directory's name).
        mode: ``"online"``, ``"offline"`` or ``"disabled"``; ``None`` leaves it to W&B
            (``WANDB_MODE``, or ``wandb offline``/``wandb online``).

    Raises:
        ImportError: without the ``wandb`` package (``pip install 'genlatent[wandb]'``),
            when constructed: before anything is written.
    """

    def __init__(
        self, *, project: str = "genlatent", name: str | None = None, mode: str | None = None
    ) -> None:
        try:
            import wandb
        except ImportError as error:
            raise _missing("wandb", "wandb", error) from error
        self._wandb = wandb
        self.project, self.name, self.mode = project, name, mode
        self._run: Any = None

    def start(self, run_dir: Path, config: Mapping[str, Any], *, step: int) -> None:
        folder = RunDirectory(run_dir).tracker_dir("wandb")
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / RUN_ID_FILE
        run_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else None
        options: dict[str, Any] = {} if self.mode is None else {"mode": self.mode}
        self._run = self._wandb.init(
            project=self.project, name=self.name or Path(run_dir).name, id=run_id,
            resume="allow", dir=str(run_dir), config=dict(config), **options,
        )  # fmt: skip
        if run_id is None:  # the id W&B gave the new run, for the runs that resume it
            with atomic_write(id_file, text=True) as handle:
                handle.write(self._run.id + "\n")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log(dict(metrics), step=step)

    def log_images(self, name: str, image: torch.Tensor, step: int) -> None:
        pixels = image.squeeze(-1) if image.shape[-1] == 1 else image
        self._run.log({name: self._wandb.Image(pixels.numpy())}, step=step)

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


_BUILT_IN: dict[str, type[TensorBoardTracker] | type[WandbTracker]] = {  # one per TRACKERS
    "tensorboard": TensorBoardTracker,
    "wandb": WandbTracker,
}


def split_trackers(trackers: Sequence[str | Tracker]) -> tuple[str | None, list[Tracker]]:
    """``fit``'s ``trackers`` as the ``log`` setting of the built-in ones and the user's own.

    Raises:
        TypeError: if an item is neither a name of `TRACKERS` nor a `Tracker`.
        ValueError: on an unknown or repeated name.

    Example:
        >>> split_trackers(["tensorboard", "wandb"])
        ('tensorboard,wandb', [])
    """
    if isinstance(trackers, str):
        trackers = [trackers]
    names: list[str] = []
    own: list[Tracker] = []
    for index, item in enumerate(trackers):
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Tracker):
            own.append(item)
        else:
            raise TypeError(
                f"trackers[{index}] must be one of {TRACKERS} or an object with start, "
                f"log_metrics, log_images and finish (see Tracker), got {type(item).__name__}"
            )
    log = ",".join(names) or None
    tracker_names(log)
    return log, own


class RunTrackers:
    """The trackers of one run, told together: the built-in ones ``log`` names (each
    constructed here, so a missing package fails before anything is written) and ``own``."""

    def __init__(self, log: str | None, own: Sequence[Tracker] = ()) -> None:
        self.trackers: list[Tracker] = [_BUILT_IN[name]() for name in tracker_names(log)]
        self.trackers += list(own)
        self._started: list[Tracker] = []

    def start(self, run: RunDirectory, step: int) -> None:
        """Start each tracker with ``run``'s ``config.json`` and the step the run starts from."""
        if not self.trackers:
            return
        config = json.loads(run.config_path.read_text(encoding="utf-8"))
        for tracker in self.trackers:
            tracker.start(run.path, config, step=step)
            self._started.append(tracker)

    def log_metrics(self, record: Mapping[str, float], step: int) -> None:
        """One line of ``metrics.jsonl``, as it is, at the global ``step``."""
        for tracker in self._started:
            tracker.log_metrics(record, step)

    def log_pictures(self, pictures: Mapping[str, torch.Tensor], step: int) -> None:
        """The pictures just drawn (`write_pictures`), by name, at the global ``step``."""
        for name, image in pictures.items():
            for tracker in self._started:
                tracker.log_images(name, image, step)

    def finish(self) -> None:
        """Finish every started tracker, once."""
        started, self._started = self._started, []
        for tracker in started:
            tracker.finish()
