"""The run directory: config, metrics log, checkpoints and pictures of one training run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from genlatent._atomic import atomic_write
from genlatent.errors import RunDirectoryError
from genlatent.train.config import TRACKERS, TrainConfig
from genlatent.train.spec import SOURCE_DIR, save_source

__all__ = ["RunDirectory", "RunDirectoryError"]


_PICTURES = (
    "reconstructions.png", "samples.png", "loss_curves.png", "latent_map.png",
    "interpolation.png", "code_usage.png",
)  # fmt: skip


class RunDirectory:
    """Paths and files of one run::

    RUN_DIR/
      config.json          the TrainConfig
      metrics.jsonl        one JSON object per evaluation (each epoch's end by default)
      steps.jsonl          one JSON object every log_every steps: step, epoch, lr, terms
      checkpoints/last.pt  the latest checkpoint (last.prev.pt: the one before)
      checkpoints/best.pt  the evaluation with the lowest test loss
      source/              copies of the user's files that --model/--quantizer name
      reconstructions.png  test inputs (odd rows) above their reconstructions
      samples.png          decoded from the prior (VAE) or random codes (VQ-VAE)
      tensorboard/         with --log tensorboard: the event files
      wandb/               with --log wandb: the W&B run's files and its id
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    steps_path = property(lambda self: self.path / "steps.jsonl")
    last_checkpoint = property(lambda self: self.path / "checkpoints" / "last.pt")
    best_checkpoint = property(lambda self: self.path / "checkpoints" / "best.pt")
    reconstructions_path = property(lambda self: self.path / "reconstructions.png")
    samples_path = property(lambda self: self.path / "samples.png")
    source_dir = property(lambda self: self.path / SOURCE_DIR)

    def tracker_dir(self, name: str) -> Path:
        """The folder of the built-in tracker ``name`` (one of `TRACKERS`): ``RUN_DIR/name``."""
        if name not in TRACKERS:
            raise ValueError(f"name must be one of {TRACKERS}, got {name!r}")
        return self.path / name

    def create(self, config: TrainConfig, built: dict[str, Any] | None = None) -> None:
        """Start a new run here (``built``: see `write_config`); refuses a folder that
        already holds a run."""
        if self.config_path.exists():
            raise RunDirectoryError(
                f"run directory {self.path} already holds a run; pass --resume {self.path} to "
                "continue it, or choose another --out"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(config, built)
        for spec in config.specs():  # the user's files, so the run rebuilds without them
            save_source(spec, self.path)

    def write_config(self, config: TrainConfig, built: dict[str, Any] | None = None) -> None:
        """Write (or replace) ``config.json``, atomically.

        ``built`` is the model as constructed (`module_config`: its class and constructor
        arguments), recorded under ``"built"``; when not given, the one recorded is kept.
        """
        built = built if built is not None else self.read_built()
        _write_json_atomic(self.config_path, config.to_dict() | ({"built": built} if built else {}))

    def read_built(self) -> dict[str, Any] | None:
        """The model as constructed, as recorded in ``config.json`` (``None`` if not)."""
        if not self.config_path.is_file():
            return None
        try:
            values = json.loads(self.config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        built = values.get("built") if isinstance(values, dict) else None
        return built if isinstance(built, dict) else None

    def checkpoints(self) -> list[Path]:
        """The checkpoint files present: ``last.pt``, ``last.prev.pt``, ``best.pt``."""
        folder = self.path / "checkpoints"
        names = ("last.pt", "last.prev.pt", "best.pt")
        return [folder / name for name in names if (folder / name).is_file()]

    def clear(self) -> list[Path]:
        """Remove the files a run writes (config, metrics, checkpoints, pictures, the built-in
        trackers' folders); return them.

        Files genlatent did not write are left alone, and so is the folder.
        """
        folder = self.path / "checkpoints"
        owned = [self.config_path, self.metrics_path, self.steps_path, *self.checkpoints()]
        owned += sorted(folder.glob("*.corrupt")) if folder.is_dir() else []
        owned += [self.path / name for name in _PICTURES]
        removed = [path for path in owned if path.is_file()]
        for path in removed:
            path.unlink()
        folders = [self.tracker_dir(name) for name in TRACKERS]
        for folder in (folder for folder in folders if folder.is_dir()):
            shutil.rmtree(folder)
            removed.append(folder)
        return removed

    def read_config(self) -> TrainConfig:
        """The config of the run stored here."""
        if not self.config_path.is_file():
            raise RunDirectoryError(f"{self.path} is not a run directory: no config.json in it")
        try:
            values = json.loads(self.config_path.read_text(encoding="utf-8"))
            return TrainConfig.from_dict(values)
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise RunDirectoryError(f"{self.config_path} is not a valid config: {error}") from error

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one evaluation's record to ``metrics.jsonl`` (flushed and fsynced)."""
        _append_line(self.metrics_path, record, sync=True)

    def append_steps(self, record: dict[str, Any]) -> None:
        """Append one logged step's record to ``steps.jsonl`` (flushed, not fsynced: the
        lines after the last checkpoint are written again on resume)."""
        _append_line(self.steps_path, record, sync=False)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record of ``metrics.jsonl``; a torn last line is ignored."""
        return _read_lines(self.metrics_path)

    def read_steps(self) -> list[dict[str, Any]]:
        """Every complete record of ``steps.jsonl``; a torn last line is ignored."""
        return _read_lines(self.steps_path)

    def truncate_metrics(self, epochs: int, steps: int | None = None) -> None:
        """On resume, drop the records the checkpoint does not hold: those after global step
        ``steps`` (``metrics.jsonl`` and ``steps.jsonl``), or, for records without a step
        (an older run), those after the first ``epochs`` epochs."""
        for path in (self.metrics_path, self.steps_path):
            if not path.is_file():
                continue
            kept = [
                r for r in _read_lines(path)
                if (r["step"] <= steps if steps is not None and "step" in r
                    else r.get("epoch", 0) <= epochs)
            ]  # fmt: skip
            with atomic_write(path, text=True) as handle:
                handle.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def _append_line(path: Path, record: dict[str, Any], *, sync: bool) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        if sync:
            os.fsync(handle.fileno())


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _write_json_atomic(path: Path, value: Any) -> None:
    with atomic_write(path, text=True) as handle:
        handle.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
