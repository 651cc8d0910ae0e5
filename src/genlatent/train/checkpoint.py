"""Checkpoint files for the trainer: re-exported from `genlatent._checkpoint`, their one home."""

from __future__ import annotations

from genlatent._checkpoint import (
    CheckpointError,
    atomic_save,
    load_checkpoint,
    load_latest_checkpoint,
)

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint", "load_latest_checkpoint"]
