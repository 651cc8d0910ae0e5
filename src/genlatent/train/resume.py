"""What a run directory allows: a fresh start, a retry of a failed start, a resume, an overwrite."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from genlatent.train.config import TrainConfig, merge_on_resume
from genlatent.train.rundir import RunDirectory, RunDirectoryError

__all__ = ["prepare_run"]


def prepare_run(
    run: RunDirectory,
    config: TrainConfig | None,
    given: Mapping[str, Any] | None = None,
    *,
    resume: bool,
    overwrite: bool = False,
    flag: Callable[[str], str] = str,
    log: Callable[[str], None] = print,
) -> tuple[TrainConfig, bool]:
    """Decide how a run starts in ``run``; return its config and whether it starts afresh.

    Nothing is written or removed here: the trainer does that once the data and model
    are ready (`RunDirectory.clear`, then ``config.json``), so a run that fails to start
    (missing data, say) leaves the folder as it was.

    - A new run in an empty folder starts afresh.
    - A folder whose run never wrote a checkpoint (a config but no checkpoint: a failed
      start) is started again with the options given, and the log says so; with
      ``resume`` the stored options are the starting point and any given value applies.
    - A folder with a checkpoint is continued with ``resume`` (only `RESUMABLE` options
      may change; each change is logged and recorded in ``config.json``), replaced with
      ``overwrite``, and otherwise refused: nothing with a checkpoint is ever replaced
      without ``overwrite``.

    Args:
        run: the run directory.
        config: the full config of a new run; on resume, ``None`` or the config whose
            values are compared with the stored ones.
        given: on resume, the values given explicitly (command-line flags); ``None``
            compares every field of ``config``.
        resume: continue the stored run.
        overwrite: replace a run that has checkpoints.
        flag: how to name a field in messages.
        log: where the notes go.

    Raises:
        ValueError: on ``resume`` together with ``overwrite``, or a change that resuming
            cannot make.
        RunDirectoryError: if the folder holds a run with checkpoints and neither
            ``resume`` nor ``overwrite`` is given, or ``resume`` finds no run.
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue or replace")
    values = dict(given) if given is not None else (config.flat() if config else {})
    has_run = run.config_path.is_file()
    if not resume:
        if config is None:
            raise ValueError("config is required unless resume=True")
        if has_run:
            _check_replaceable(run, overwrite, log)
        return config, True
    stored = run.read_config()  # raises when there is no run to resume
    if not run.checkpoints():
        restart = stored.replace(**values)
        log(f"{run.path} never wrote a checkpoint: starting it again with the options given")
        return restart, True
    merged, changes = merge_on_resume(stored, values, flag=flag)
    if changes:
        log(f"resuming {run.path} with " + ", ".join(changes))
    return merged, False


def _check_replaceable(run: RunDirectory, overwrite: bool, log: Callable[[str], None]) -> None:
    if run.checkpoints() and not overwrite:
        raise RunDirectoryError(
            f"run directory {run.path} already holds a run with checkpoints; pass --resume "
            f"{run.path} to continue it, --overwrite to replace it, or choose another --out"
        )
    if run.checkpoints():
        log(f"overwriting the run in {run.path} (--overwrite)")
    else:
        log(f"{run.path} holds a run that never wrote a checkpoint: replacing its config")
