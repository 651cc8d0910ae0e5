"""Multi-process training under ``torchrun`` with DistributedDataParallel."""

from __future__ import annotations

import gc
import os
import time
import traceback
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["ProcessGroup", "leave_process_group", "setup_distributed"]

_SETTLE_SECONDS = 0.05
"""How long a process leaving its group waits, GIL released, for gloo's threads to idle."""


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job: ``rank`` of ``world`` (1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory."""
        return self.rank == 0


def setup_distributed(device_type: str) -> ProcessGroup:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    gloo on CPU, NCCL on CUDA. Without ``WORLD_SIZE`` > 1 this does nothing.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return ProcessGroup()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return ProcessGroup(dist.get_rank(), dist.get_world_size(), local_rank)


def leave_process_group(error: BaseException | None = None, *, together: bool = True) -> None:
    """Tear down the process group this process joined, in an order that cannot deadlock.

    The group's destructor joins gloo's worker threads, and runs wherever its last
    reference goes, holding the GIL; a worker thread that is still releasing a finished
    collective (its saved thread-local state holds Python objects) needs the GIL too, and
    the process hangs. DDP's reducer holds a reference to the group: destroyed while a
    reducer lives, the group dies later with the reducer, right after the last
    collectives. A run stopped by an error keeps its reducer alive in the error's
    traceback, so that error's frames are cleared first (their locals: the DDP wrapper,
    the batches) and the garbage is collected while the group is still registered; every
    process then waits at a barrier (no collective is left in flight), sleeps a moment
    with the GIL released (the worker threads finish releasing their last work), and only
    then is the group destroyed.

    Args:
        error: the exception leaving the run, if any.
        together: whether every process leaves here at the same point (a finished run, or
            an error raised on all of them together, as a non-finite loss is); otherwise
            no barrier, which a process that never comes would block.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if error is not None:
        traceback.clear_frames(error.__traceback__)
    gc.collect()
    if together:
        dist.barrier()
    time.sleep(_SETTLE_SECONDS)
    dist.destroy_process_group()
